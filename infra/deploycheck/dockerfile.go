package deploycheck

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines
// joined: Op upper case, Args the rest of the line.
type Instruction struct {
	Op   string
	Args string
	Line int
}

// Stage is one FROM and the instructions up to the next.
type Stage struct {
	From         string // the image reference as written (before ARG expansion)
	Name         string // AS name, "" if none
	Instructions []Instruction
}

// Dockerfile is a parsed Dockerfile: the ARGs declared before the first FROM
// (with their defaults, "" if none) and its stages.
type Dockerfile struct {
	Path       string
	GlobalArgs map[string]string
	Stages     []Stage
}

// ParseDockerfile reads a Dockerfile's instructions, joining continuation
// lines and dropping comments and parser directives.
func ParseDockerfile(path string) (*Dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	df := &Dockerfile{Path: path, GlobalArgs: map[string]string{}}
	var instr strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if instr.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			instr.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		instr.WriteString(line)
		if err := df.add(instr.String(), start); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, start, err)
		}
		instr.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return df, nil
}

func (df *Dockerfile) add(text string, line int) error {
	op, args, _ := strings.Cut(text, " ")
	in := Instruction{Op: strings.ToUpper(op), Args: strings.TrimSpace(args), Line: line}
	switch {
	case in.Op == "FROM":
		f := strings.Fields(in.Args)
		for len(f) > 0 && strings.HasPrefix(f[0], "--") { // --platform=...
			f = f[1:]
		}
		if len(f) == 0 {
			return fmt.Errorf("FROM without an image")
		}
		st := Stage{From: f[0]}
		if len(f) == 3 && strings.EqualFold(f[1], "AS") {
			st.Name = f[2]
		}
		df.Stages = append(df.Stages, st)
	case len(df.Stages) == 0:
		if in.Op != "ARG" {
			return fmt.Errorf("%s before the first FROM", in.Op)
		}
		name, def, _ := strings.Cut(in.Args, "=")
		df.GlobalArgs[name] = def
	default:
		st := &df.Stages[len(df.Stages)-1]
		st.Instructions = append(st.Instructions, in)
	}
	return nil
}

// dockerVar matches $NAME and ${NAME}.
var dockerVar = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// expand substitutes variables as Docker does in FROM, COPY and WORKDIR
// (no modifiers are used here), reporting those vars lacks.
func expand(s string, vars map[string]string) (string, []string) {
	var missing []string
	out := dockerVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := dockerVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	return out, missing
}

// stageByName finds a stage by its AS name or its index.
func (df *Dockerfile) stageByName(name string) (int, bool) {
	for i, st := range df.Stages {
		if st.Name == name || fmt.Sprint(i) == name {
			return i, true
		}
	}
	return 0, false
}

// splitFlags splits an instruction's leading --flags from the rest.
func splitFlags(args string) (flags map[string]string, rest []string) {
	flags = map[string]string{}
	f := strings.Fields(args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		flags[k] = v
		f = f[1:]
	}
	return flags, f
}

// stripRunFlags drops RUN's leading --mount/--network/--security flags.
func stripRunFlags(args string) string {
	s := strings.TrimSpace(args)
	for strings.HasPrefix(s, "--") {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return ""
		}
		s = strings.TrimSpace(s[i:])
	}
	return s
}
