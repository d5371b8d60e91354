// Command admin creates the first admin user on a tempwatch database, the
// way createsuperuser does for Django:
//
//	TEMPWATCH_ADMIN_PASSWORD=... DATABASE_URL=postgres://... go run ./cmd/admin -email ops@example.com
//	DATABASE_URL=postgres://... go run ./cmd/admin -email ops@example.com < password.txt
//
// The password comes from TEMPWATCH_ADMIN_PASSWORD or the first line of
// standard input, never from a flag (flags land in shell history and ps).
// An existing email is refused unless -reset-password is given.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}
