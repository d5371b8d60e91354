// Command stepfn is the devstack fixture of a deploy step (as
// functions/migrate): the template's custom resource names it, so devstack
// runs it once as a plain command before the other functions. It leaves
// STEP_MARKER behind as proof it ran, and fails when STEP_FAIL is set.
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		fmt.Fprintln(os.Stderr, "stepfn: run under a Runtime API, want a plain command")
		os.Exit(2)
	}
	if msg := os.Getenv("STEP_FAIL"); msg != "" {
		fmt.Fprintln(os.Stderr, "stepfn: "+msg)
		os.Exit(1)
	}
	if m := os.Getenv("STEP_MARKER"); m != "" {
		if err := os.WriteFile(m, []byte("ran"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "stepfn:", err)
			os.Exit(1)
		}
	}
	fmt.Println("stepfn: ran as a plain command, function", os.Getenv("AWS_LAMBDA_FUNCTION_NAME"))
}
