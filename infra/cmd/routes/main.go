// Command routes prints what template.yaml declares, for scripts that must not
// keep their own list (localstack/build.sh, the Makefile):
//
//	routes [-template FILE]              METHOD PATH FUNCTION, one route a line
//	routes [-template FILE] -functions   one function folder name a line
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

func main() {
	file := flag.String("template", "template.yaml", "SAM template to read")
	functions := flag.Bool("functions", false, "print function names instead of routes")
	flag.Parse()
	if err := run(os.Stdout, *file, *functions); err != nil {
		fmt.Fprintln(os.Stderr, "routes:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, file string, functions bool) error {
	tpl, err := sam.Load(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	if functions {
		for _, f := range tpl.Functions {
			fmt.Fprintln(w, f.Name)
		}
	} else {
		for _, r := range tpl.Routes() {
			fmt.Fprintln(w, r.String())
		}
	}
	return w.Flush()
}
