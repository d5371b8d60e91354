// Command jwtkeys makes a fresh Ed25519 token key and prints it as the two
// variables that carry it:
//
//	jwtkeys [-kid KID]    JWT_SIGNING_KEYS=KID:<base64 seed>   (the auth function only: a secret)
//	                      JWT_PUBLIC_KEYS=KID:<base64 public>  (every function that verifies tokens)
//
// The kid defaults to today's date, so a rotation's keys tell apart. To rotate,
// append each to the variable's list (comma-separated): README, "Rotating the
// token signing key".
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/tempwatch/tempwatch/shared/auth"
)

func main() {
	kid := flag.String("kid", time.Now().UTC().Format("2006-01-02"), "key id (the kid header of the tokens it signs)")
	flag.Parse()
	if err := run(os.Stdout, *kid); err != nil {
		fmt.Fprintln(os.Stderr, "jwtkeys:", err)
		os.Exit(2)
	}
}

// validKID keeps a kid out of the list syntax (kid:key,kid:key) and the shell.
var validKID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func run(out io.Writer, kid string) error {
	if !validKID.MatchString(kid) {
		return fmt.Errorf("-kid %q: use 1 to 64 letters, digits, '.', '_' or '-'", kid)
	}
	signing, public := auth.NewKeyPair(kid)
	_, err := fmt.Fprintf(out, "JWT_SIGNING_KEYS=%s\nJWT_PUBLIC_KEYS=%s\n", signing, public)
	return err
}
