// Command routes prints what template.yaml declares, for scripts that must not
// keep their own list (localstack/build.sh, the Makefile):
//
//	routes [-template FILE]              METHOD PATH FUNCTION, one route a line
//	routes [-template FILE] -functions   one function folder name a line
//	routes [-template FILE] -env         FUNCTION NAME [VALUE], one variable a line:
//	                                     the variables each function lists, with the
//	                                     value when it is written out (not an intrinsic)
//	routes [-template FILE] -config      FUNCTION TIMEOUT MEMORY, one function a line:
//	                                     its timeout in seconds and memory in MB
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

func main() {
	file := flag.String("template", "template.yaml", "SAM template to read")
	functions := flag.Bool("functions", false, "print function names instead of routes")
	env := flag.Bool("env", false, "print each function's environment variables instead of routes")
	cfg := flag.Bool("config", false, "print each function's timeout (seconds) and memory (MB) instead of routes")
	flag.Parse()
	what := "routes"
	switch {
	case *functions:
		what = "functions"
	case *env:
		what = "env"
	case *cfg:
		what = "config"
	}
	if err := run(os.Stdout, *file, what); err != nil {
		fmt.Fprintln(os.Stderr, "routes:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, file, what string) error {
	tpl, err := sam.Load(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	switch what {
	case "functions":
		for _, f := range tpl.Functions {
			fmt.Fprintln(w, f.Name)
		}
	case "env":
		for _, f := range tpl.Functions {
			for _, v := range f.Env {
				fmt.Fprintln(w, strings.TrimSpace(f.Name+" "+v.Name+" "+v.Value))
			}
		}
	case "config":
		for _, f := range tpl.Functions {
			fmt.Fprintf(w, "%s %d %d\n", f.Name, int(f.Timeout.Seconds()), f.MemorySize)
		}
	default:
		for _, r := range tpl.Routes() {
			fmt.Fprintln(w, r.String())
		}
	}
	return w.Flush()
}
