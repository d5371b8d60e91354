package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// ProxyParameter is the template parameter naming the connection proxy
// (RDS Proxy) endpoint; README's "Deploying to AWS" documents it.
const ProxyParameter = "DatabaseProxyEndpoint"

// IngestFunctionID is the ingest function's logical id in the template.
const IngestFunctionID = "IngestFunction"

// Sample values CheckOperations evaluates DATABASE_URL with: the password
// percent-encodes an @, as a URL must.
const (
	sampleDatabaseURL = "postgres://tempwatch:p%40ss@db.example.internal:5432/tempwatch?sslmode=require"
	sampleProxy       = "tempwatch.proxy-abc.us-east-1.rds.amazonaws.com:5432"
	sampleProxiedURL  = "postgres://tempwatch:p%40ss@tempwatch.proxy-abc.us-east-1.rds.amazonaws.com:5432/tempwatch?sslmode=require"
)

// CheckOperations checks what the template declares for running in
// production: reserved concurrency for ingest (at least the SQS event
// source's maximum concurrency), for every function a log group of its own
// (LoggingConfig, named by CloudFormation) with a retention, CloudWatch alarms on ingest's errors and throttles, and the
// connection proxy parameter: with it set, every function but migrate gets
// DATABASE_URL with the proxy as its host (evaluated, not read), without it
// DatabaseURL as given; migrate always connects straight to the database.
func CheckOperations(root string) []error {
	text, err := os.ReadFile(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil || len(doc.Content) == 0 {
		return []error{fmt.Errorf("%s: %v", TemplateFile, err)}
	}
	top := doc.Content[0]
	params, resources := sam.Get(top, "Parameters"), sam.Get(top, "Resources")
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(TemplateFile+": "+format, args...)) }

	var functions []string
	byType := map[string][]*yaml.Node{}
	for i := 0; resources != nil && i+1 < len(resources.Content); i += 2 {
		id, r := resources.Content[i].Value, resources.Content[i+1]
		typ := sam.Scalar(sam.Get(r, "Type"))
		byType[typ] = append(byType[typ], r)
		if typ == "AWS::Serverless::Function" {
			functions = append(functions, id)
		}
	}

	// Reserved concurrency.
	ingest := sam.Get(resources, IngestFunctionID)
	reserved := sam.Get(sam.Get(ingest, "Properties"), "ReservedConcurrentExecutions")
	if reserved == nil {
		fail("%s has no ReservedConcurrentExecutions: a burst of readings opens database connections without bound", IngestFunctionID)
	} else if n, ok := paramDefaultInt(params, reserved); ok {
		if m, ok := paramDefaultInt(params, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!Ref", Value: "IngestQueueMaxConcurrency"}); ok && n < m {
			fail("%s's reserved concurrency (%d) is below IngestQueueMaxConcurrency (%d): SQS would be throttled", IngestFunctionID, n, m)
		}
	}

	// Log groups: each function logs to its own group, which CloudFormation
	// names. A group declared as /aws/lambda/<function> fails the update of
	// a stack whose functions already ran (Lambda created that group).
	for _, id := range functions {
		want := id + "LogGroup"
		ref := sam.Get(sam.Get(sam.Get(sam.Get(resources, id), "Properties"), "LoggingConfig"), "LogGroup")
		if ref == nil || ref.Tag != "!Ref" || ref.Value != want {
			fail("%s has no LoggingConfig: {LogGroup: !Ref %s}", id, want)
			continue
		}
		lg := sam.Get(resources, want)
		if sam.Scalar(sam.Get(lg, "Type")) != "AWS::Logs::LogGroup" {
			fail("%s is not an AWS::Logs::LogGroup", want)
			continue
		}
		p := sam.Get(lg, "Properties")
		if sam.Get(p, "RetentionInDays") == nil {
			fail("%s (the log group of %s) has no RetentionInDays: it keeps logs forever", want, id)
		}
		if sam.Get(p, "LogGroupName") != nil {
			fail("%s sets LogGroupName: let CloudFormation name it (a name Lambda already created fails the update)", want)
		}
	}

	// Alarms.
	alarmed := map[string]bool{}
	for _, a := range byType["AWS::CloudWatch::Alarm"] {
		p := sam.Get(a, "Properties")
		if sam.Scalar(sam.Get(p, "Namespace")) != "AWS/Lambda" {
			continue
		}
		for _, d := range sam.Seq(sam.Get(p, "Dimensions")) {
			v := sam.Get(d, "Value")
			if sam.Scalar(sam.Get(d, "Name")) == "FunctionName" && v != nil && v.Tag == "!Ref" && v.Value == IngestFunctionID {
				alarmed[sam.Scalar(sam.Get(p, "MetricName"))] = true
			}
		}
	}
	for _, metric := range []string{"Errors", "Throttles"} {
		if !alarmed[metric] {
			fail("no AWS::CloudWatch::Alarm on AWS/Lambda %s of %s (Dimensions FunctionName: !Ref %s)", metric, IngestFunctionID, IngestFunctionID)
		}
	}

	// The connection proxy.
	if sam.Get(params, ProxyParameter) == nil {
		fail("no parameter %s (the RDS Proxy endpoint the functions connect through)", ProxyParameter)
		return errs
	}
	conds := sam.Get(top, "Conditions")
	for _, proxy := range []string{sampleProxy, ""} {
		values := map[string]string{"DatabaseURL": sampleDatabaseURL, ProxyParameter: proxy}
		for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
			if _, set := values[params.Content[i].Value]; !set {
				values[params.Content[i].Value] = sam.Scalar(sam.Get(params.Content[i+1], "Default"))
			}
		}
		ev := &intrinsics{params: values, conditions: conds}
		for _, id := range functions {
			vars := sam.Get(sam.Get(sam.Get(sam.Get(resources, id), "Properties"), "Environment"), "Variables")
			node := sam.Get(vars, "DATABASE_URL")
			if node == nil {
				continue
			}
			got, err := ev.string(node)
			want := sampleDatabaseURL
			if proxy != "" && id != "MigrateFunction" {
				want = sampleProxiedURL
			}
			switch {
			case err != nil:
				fail("%s: DATABASE_URL: %v", id, err)
			case got != want:
				fail("%s: with %s=%q, DATABASE_URL is %q, want %q", id, ProxyParameter, proxy, got, want)
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return append(errs, err)
	}
	_, section, _ := strings.Cut(string(readme), "### Deploying to AWS")
	if section, _, _ = strings.Cut(section, "\n## "); !strings.Contains(section, ProxyParameter) {
		errs = append(errs, fmt.Errorf("README.md: the \"Deploying to AWS\" section does not document %s", ProxyParameter))
	}
	return errs
}

// paramDefaultInt reads n, a number or !Ref to a parameter, as an int (the
// parameter's Default).
func paramDefaultInt(params, n *yaml.Node) (int, bool) {
	v := n.Value
	if n.Tag == "!Ref" {
		v = sam.Scalar(sam.Get(sam.Get(params, n.Value), "Default"))
	}
	i, err := strconv.Atoi(v)
	return i, err == nil
}

// intrinsics evaluates the CloudFormation functions DATABASE_URL uses
// (Ref, If, Join, Split, Select, and the conditions' Not and Equals) with
// given parameter values.
type intrinsics struct {
	params     map[string]string
	conditions *yaml.Node
}

func (e *intrinsics) string(n *yaml.Node) (string, error) {
	v, err := e.eval(n)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%v is a list, not a string", v)
	}
	return s, nil
}

func (e *intrinsics) list(n *yaml.Node) ([]string, error) {
	v, err := e.eval(n)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]string)
	if !ok {
		return nil, fmt.Errorf("%q is a string, not a list", v)
	}
	return l, nil
}

func (e *intrinsics) eval(n *yaml.Node) (any, error) {
	args := n.Content
	switch n.Tag {
	case "!Ref":
		v, ok := e.params[n.Value]
		if !ok {
			return nil, fmt.Errorf("!Ref %s: no such parameter", n.Value)
		}
		return v, nil
	case "!If":
		if len(args) != 3 {
			return nil, fmt.Errorf("!If wants [condition, then, else]")
		}
		c, err := e.condition(sam.Get(e.conditions, args[0].Value))
		if err != nil {
			return nil, fmt.Errorf("condition %s: %w", args[0].Value, err)
		}
		if c {
			return e.eval(args[1])
		}
		return e.eval(args[2])
	case "!Join":
		if len(args) != 2 {
			return nil, fmt.Errorf("!Join wants [separator, list]")
		}
		l, err := e.list(args[1])
		if err != nil {
			return nil, err
		}
		return strings.Join(l, args[0].Value), nil
	case "!Split":
		if len(args) != 2 {
			return nil, fmt.Errorf("!Split wants [separator, string]")
		}
		s, err := e.string(args[1])
		if err != nil {
			return nil, err
		}
		return strings.Split(s, args[0].Value), nil
	case "!Select":
		if len(args) != 2 {
			return nil, fmt.Errorf("!Select wants [index, list]")
		}
		i, err := strconv.Atoi(args[0].Value)
		if err != nil {
			return nil, fmt.Errorf("!Select index %q: %w", args[0].Value, err)
		}
		l, err := e.list(args[1])
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(l) {
			return nil, fmt.Errorf("!Select %d of %d items", i, len(l))
		}
		return l[i], nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			return nil, fmt.Errorf("%s is not evaluated here", n.Tag)
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(args))
		for _, a := range args {
			s, err := e.string(a)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot evaluate a %v node", n.Kind)
}

func (e *intrinsics) condition(n *yaml.Node) (bool, error) {
	if n == nil {
		return false, fmt.Errorf("not declared")
	}
	switch n.Tag {
	case "!Not":
		if len(n.Content) != 1 {
			return false, fmt.Errorf("!Not wants one condition")
		}
		c, err := e.condition(n.Content[0])
		return !c, err
	case "!Equals":
		if len(n.Content) != 2 {
			return false, fmt.Errorf("!Equals wants two values")
		}
		a, err := e.string(n.Content[0])
		if err != nil {
			return false, err
		}
		b, err := e.string(n.Content[1])
		return a == b, err
	}
	return false, fmt.Errorf("%s is not evaluated here", n.Tag)
}
