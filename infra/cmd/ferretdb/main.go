// Command ferretdb runs the embedded FerretDB (SQLite backend) as the local
// MongoDB until SIGINT or SIGTERM, printing its mongodb:// URI once ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tempwatch/tempwatch/infra/embedded/ferret"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "", "directory for the SQLite data files (default: a new temporary directory)")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	if *dir == "" {
		d, err := os.MkdirTemp("", "tempwatch-ferretdb-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	uri, stop, err := ferret.Start(ctx, *dir, *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	fmt.Println(uri)
	<-ctx.Done()
	stop()
}
