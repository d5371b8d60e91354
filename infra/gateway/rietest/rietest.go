// Package rietest runs the real AWS Lambda runtime interface emulator
// (aws-lambda-rie) in front of a function's bootstrap, outside Docker, for
// tests of what talks to function containers. It installs the emulator with
// go install into the user's cache folder the first time.
//
// The emulator's Runtime API listens on 127.0.0.1:9001 whatever it is told,
// so only one runs on a host at a time: MustStart holds a host-wide file
// lock until the test ends, which serializes the tests that use it, in any
// package.
package rietest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Module is the emulator's version: the pseudo-version of its main branch
// that fixed nothing here and that the gateway's queueing is tested against.
const Module = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// MustInstall returns the emulator's path, installing it first if the
// cache folder lacks it. A failed install fails tb, naming the command.
func MustInstall(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("aws-lambda-rie: not installed or run under -short")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		tb.Fatalf("aws-lambda-rie: no cache folder to install into: %v", err)
	}
	dir := filepath.Join(cache, "tempwatch", "aws-lambda-rie", filepath.Base(Module))
	bin := filepath.Join(dir, "aws-lambda-rie")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	unlock := lock(tb, filepath.Join(os.TempDir(), "tempwatch-aws-lambda-rie-install.lock"))
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin // another test installed it meanwhile
	}
	cmd := exec.Command("go", "install", Module)
	cmd.Dir = tb.TempDir() // outside any module: go install pkg@version
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("aws-lambda-rie: GOBIN=%s go install %s failed (needs the Go module proxy or a module cache holding it): %v\n%s", dir, Module, err, out)
	}
	return bin
}

// MustStart runs bootstrap under the emulator with env added to this
// process's environment and returns the emulator's base URL (the Invoke API
// at /2015-03-31/functions/function/invocations). The emulator stops when
// the test ends.
func MustStart(tb testing.TB, bootstrap string, env ...string) string {
	tb.Helper()
	bin := MustInstall(tb)
	tb.Cleanup(lock(tb, filepath.Join(os.TempDir(), "tempwatch-aws-lambda-rie.lock")))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("aws-lambda-rie: pick a port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logFile, err := os.Create(filepath.Join(tb.TempDir(), "rie.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "--runtime-interface-emulator-address", addr, bootstrap)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatalf("aws-lambda-rie: start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err := <-exited; err != nil {
			tb.Logf("aws-lambda-rie stopped: %v", err) // killed: expected
		}
		_ = logFile.Close()
		if tb.Failed() {
			if out, err := os.ReadFile(logFile.Name()); err == nil {
				tb.Logf("aws-lambda-rie log:\n%s", out)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logFile.Name())
			tb.Fatalf("aws-lambda-rie exited before listening on %s (is 127.0.0.1:9001, its Runtime API, taken?): %v\n%s", addr, err, out)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("aws-lambda-rie: not listening on %s after 10 s", addr)
		}
		time.Sleep(20 * time.Millisecond) // poll interval while waiting for the port
	}
}

// MustBuildFunction builds functions/<name> of the repository at root as
// the Lambda build does and returns the bootstrap's path.
func MustBuildFunction(tb testing.TB, root, name string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", out, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./functions/%s: %v\n%s", name, err, b)
	}
	return out
}

// lock takes an exclusive lock on file, waiting for it, and returns the
// release.
func lock(tb testing.TB, file string) func() {
	tb.Helper()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		tb.Fatalf("aws-lambda-rie: lock %s: %v", file, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		tb.Fatalf("aws-lambda-rie: lock %s: %v", file, err)
	}
	return func() { _ = f.Close() } // closing the file releases the lock
}
