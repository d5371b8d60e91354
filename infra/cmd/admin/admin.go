package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// passwordEnv names the variable the password is read from before stdin.
const passwordEnv = "TEMPWATCH_ADMIN_PASSWORD"

// run creates (or with -reset-password, re-keys) an admin and reports what it did on stdout.
func run(ctx context.Context, args []string, getenv config.Getenv, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of the admin to create (required)")
	name := fs.String("name", "", "display name")
	reset := fs.Bool("reset-password", false, "set a new password if the admin already exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-email is required (and no other arguments)")
	}
	r := config.NewReader(getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	if err := r.Err(); err != nil {
		return err
	}
	password, err := readPassword(getenv, stdin, stderr)
	if err != nil {
		return err
	}
	if msg := auth.CheckPasswordPolicy(password, *email); msg != "" {
		return fmt.Errorf("password %s", msg)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewUserStore(db)

	u, err := store.FindUserByLogin(ctx, "", *email)
	switch {
	case tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND:
		u = &tempwatch.User{Email: strings.TrimSpace(*email), Name: *name, Role: tempwatch.RoleAdmin, PasswordHash: hash}
		if err := store.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("create admin: %s", describe(err))
		}
		fmt.Fprintf(stdout, "created admin %s (id %s)\n", u.Email, u.ID)
		return nil
	case err != nil:
		return fmt.Errorf("look up %s: %s", *email, describe(err))
	case !*reset:
		return fmt.Errorf("a user with email %s already exists (role %s); nothing changed. "+
			"Pass -reset-password to set a new password for an existing admin", u.Email, u.Role)
	case u.Role != tempwatch.RoleAdmin:
		return fmt.Errorf("%s is a %s, not an admin; this tool does not change roles (use PATCH /users/{id} as an admin)", u.Email, u.Role)
	}
	u.PasswordHash = hash
	if *name != "" {
		u.Name = *name
	}
	if err := store.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("reset password: %s", describe(err))
	}
	fmt.Fprintf(stdout, "reset the password of admin %s (id %s); their sessions were ended\n", u.Email, u.ID)
	return nil
}

// describe gives the operator the validation details of err.
func describe(err error) string {
	if f := tempwatch.ErrorFields(err); len(f) > 0 {
		return fmt.Sprintf("%s %v", tempwatch.ErrorMessage(err), f)
	}
	if tempwatch.ErrorCode(err) == tempwatch.EINTERNAL {
		return err.Error()
	}
	return tempwatch.ErrorMessage(err)
}

// readPassword takes the password from passwordEnv, else from the first line of stdin.
func readPassword(getenv config.Getenv, stdin io.Reader, stderr io.Writer) (string, error) {
	if pw := getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(stderr, "Password for the admin (input is shown; set %s to avoid typing it): ", passwordEnv)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password: set %s or pipe it on stdin", passwordEnv)
	}
	return line, nil
}
