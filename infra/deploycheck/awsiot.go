package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/shared/ingest"
)

// CheckAWSIoT checks the AWS IoT Core path of template.yaml, whose parts
// only AWS would otherwise bring together: the readings topic rule (SQL
// ingest.IoTRuleSQL, the body the ingest function reads, in its version)
// sends to a queue with a dead-letter
// queue; a function consumes that queue reporting per-item failures, and
// the queue's visibility timeout is at least six times that function's
// timeout; the custom authorizer has signing disabled and its function
// may be invoked by iot.amazonaws.com for that authorizer.
func CheckAWSIoT(root string) []error {
	b, err := os.ReadFile(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) == 0 {
		return []error{fmt.Errorf("%s: not YAML: %v", TemplateFile, err)}
	}
	res := map[string]*yaml.Node{}
	types := map[string]string{}
	resources := sam.Get(doc.Content[0], "Resources")
	for i := 0; resources != nil && i+1 < len(resources.Content); i += 2 {
		id := resources.Content[i].Value
		res[id] = resources.Content[i+1]
		types[id] = sam.Scalar(sam.Get(res[id], "Type"))
	}
	ofType := func(t string) []string {
		var ids []string
		for id, typ := range types {
			if typ == t {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(TemplateFile+": "+format, args...))
	}

	// The rule and its queue.
	var queue string
	for _, id := range ofType("AWS::IoT::TopicRule") {
		payload := sam.Get(sam.Get(res[id], "Properties"), "TopicRulePayload")
		if sam.Scalar(sam.Get(payload, "Sql")) != ingest.IoTRuleSQL {
			continue
		}
		if v := sam.Scalar(sam.Get(payload, "AwsIotSqlVersion")); v != ingest.IoTRuleSQLVersion {
			fail("%s: AwsIotSqlVersion is %q, want %s", id, v, ingest.IoTRuleSQLVersion)
		}
		for _, a := range sam.Seq(sam.Get(payload, "Actions")) {
			if q, ok := intrinsic(sam.Get(sam.Get(a, "Sqs"), "QueueUrl"), "!Ref"); ok {
				queue = q
			}
		}
	}
	if queue == "" || types[queue] != "AWS::SQS::Queue" {
		fail("no AWS::IoT::TopicRule with Sql %q sends to an AWS::SQS::Queue (QueueUrl: !Ref <queue>)", ingest.IoTRuleSQL)
		return errs
	}
	qprops := sam.Get(res[queue], "Properties")
	redrive := sam.Get(qprops, "RedrivePolicy")
	if dlq, ok := intrinsic(sam.Get(redrive, "deadLetterTargetArn"), "!GetAtt"); !ok || types[strings.TrimSuffix(dlq, ".Arn")] != "AWS::SQS::Queue" {
		fail("%s: RedrivePolicy.deadLetterTargetArn must be !GetAtt <dead-letter queue>.Arn", queue)
	}
	if n, err := strconv.Atoi(sam.Scalar(sam.Get(redrive, "maxReceiveCount"))); err != nil || n < 1 {
		fail("%s: RedrivePolicy.maxReceiveCount must bound the attempts", queue)
	}

	// The function consuming it.
	consumers := 0
	for _, id := range ofType("AWS::Serverless::Function") {
		props := sam.Get(res[id], "Properties")
		events := sam.Get(props, "Events")
		for i := 0; events != nil && i+1 < len(events.Content); i += 2 {
			ev := events.Content[i+1]
			if q, ok := intrinsic(sam.Get(sam.Get(ev, "Properties"), "Queue"), "!GetAtt"); sam.Scalar(sam.Get(ev, "Type")) != "SQS" || !ok || q != queue+".Arn" {
				continue
			}
			consumers++
			if !slices.ContainsFunc(sam.Seq(sam.Get(sam.Get(ev, "Properties"), "FunctionResponseTypes")), func(n *yaml.Node) bool { return n.Value == "ReportBatchItemFailures" }) {
				fail("%s: its SQS event on %s must report per-item failures (FunctionResponseTypes: [ReportBatchItemFailures])", id, queue)
			}
			timeout := seconds(sam.Scalar(sam.Get(props, "Timeout")), sam.Scalar(sam.Get(sam.Get(sam.Get(doc.Content[0], "Globals"), "Function"), "Timeout")))
			if vis := seconds(sam.Scalar(sam.Get(qprops, "VisibilityTimeout")), "30"); vis < 6*timeout {
				fail("%s: VisibilityTimeout %gs is under six times the Timeout of %s (%gs)", queue, vis, id, timeout)
			}
		}
	}
	if consumers == 0 {
		fail("no function consumes %s (an SQS event with Queue: !GetAtt %s.Arn)", queue, queue)
	}

	// The custom authorizer and the permission to invoke it.
	authorizers := ofType("AWS::IoT::Authorizer")
	if len(authorizers) == 0 {
		fail("no AWS::IoT::Authorizer for devices")
	}
	for _, id := range authorizers {
		props := sam.Get(res[id], "Properties")
		if sam.Scalar(sam.Get(props, "SigningDisabled")) != "true" {
			fail("%s: SigningDisabled must be true (devices send a username and password)", id)
		}
		fn, ok := intrinsic(sam.Get(props, "AuthorizerFunctionArn"), "!GetAtt")
		fn = strings.TrimSuffix(fn, ".Arn")
		if !ok || types[fn] != "AWS::Serverless::Function" {
			fail("%s: AuthorizerFunctionArn must be !GetAtt <function>.Arn", id)
			continue
		}
		permitted := false
		for _, p := range ofType("AWS::Lambda::Permission") {
			pp := sam.Get(res[p], "Properties")
			f, _ := intrinsic(sam.Get(pp, "FunctionName"), "!GetAtt")
			src, _ := intrinsic(sam.Get(pp, "SourceArn"), "!GetAtt")
			permitted = permitted || (strings.TrimSuffix(f, ".Arn") == fn && sam.Scalar(sam.Get(pp, "Principal")) == "iot.amazonaws.com" &&
				sam.Scalar(sam.Get(pp, "Action")) == "lambda:InvokeFunction" && src == id+".Arn")
		}
		if !permitted {
			fail("%s: no AWS::Lambda::Permission lets iot.amazonaws.com invoke %s for this authorizer (SourceArn: !GetAtt %s.Arn)", id, fn, id)
		}
	}
	return errs
}

// intrinsic returns the argument of a short-form intrinsic (!Ref X,
// !GetAtt X.Arn) with the given tag.
func intrinsic(n *yaml.Node, tag string) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != tag {
		return "", false
	}
	return n.Value, true
}

// seconds reads a number of seconds, falling back to def (then to SAM's
// default function timeout).
func seconds(v, def string) float64 {
	for _, s := range []string{v, def, "3"} {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return 0
}
