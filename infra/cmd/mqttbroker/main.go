// Command mqttbroker runs the embedded MQTT broker (package broker) as its
// own process, with device authentication, until SIGINT or SIGTERM. It
// prints its tcp:// URL once it accepts connections. Environment: see
// broker.NewAuthority.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tempwatch/tempwatch/infra/embedded/broker"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1884", "TCP address to listen on (port 0 picks a free one)")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	auth, closeAuth, err := broker.NewAuthority(ctx, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqttbroker:", err)
		os.Exit(1)
	}
	defer closeAuth()
	url, stop, err := broker.Start(*addr, auth)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqttbroker:", err)
		os.Exit(1)
	}
	fmt.Println(url)
	<-ctx.Done()
	stop()
}
