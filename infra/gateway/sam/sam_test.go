package sam_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

const template = `
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    MemorySize: 256
    Timeout: 10
    Environment:
      Variables:
        DATABASE_URL: !Ref DatabaseURL
        REDIS_URL: {Ref: RedisURL}
        GREETING: hello
        ECHO_SUB: !Sub "${AWS::Region}-x"
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties: {StageName: v1}
  ClientsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/clients/
      Timeout: 2.5
      Environment:
        Variables:
          GREETING: hi
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/clients/{id}", Method: get}
        List:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /clients, Method: get}
  IngestFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/ingest
      Handler: other
      Events:
        Device:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /ingest
            Method: POST
`

func TestParse(t *testing.T) {
	tpl, err := sam.Parse([]byte(template))
	require.NoError(t, err)
	require.Len(t, tpl.Functions, 2)

	clients := tpl.Functions[0] // sorted by Name
	assert.Equal(t, "ClientsFunction", clients.LogicalID)
	assert.Equal(t, "functions/clients/", clients.CodeURI)
	assert.Equal(t, "provided.al2023", clients.Runtime)
	assert.Equal(t, "bootstrap", clients.Handler)
	assert.Equal(t, 2500*time.Millisecond, clients.Timeout, "a function's own Timeout overrides Globals")
	assert.Equal(t, 256, clients.MemorySize)
	assert.Equal(t, []sam.EnvVar{
		{Name: "DATABASE_URL", Ref: "DatabaseURL"},
		{Name: "REDIS_URL", Ref: "RedisURL"},
		{Name: "GREETING", Value: "hi"},
		{Name: "ECHO_SUB", Ref: "${AWS::Region}-x"},
	}, clients.Env)

	ingest := tpl.Functions[1]
	assert.Equal(t, "ingest", ingest.Name)
	assert.Equal(t, "other", ingest.Handler, "a function's own Handler overrides Globals")
	assert.Equal(t, 10*time.Second, ingest.Timeout)

	var got []string
	for _, r := range tpl.Routes() {
		got = append(got, r.String())
	}
	assert.Equal(t, []string{"GET /clients clients", "GET /clients/{id} clients", "POST /ingest ingest"}, got)
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"unquoted braces in flow mapping", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Events:\n        A:\n          Type: Api\n          Properties: {Path: /f/{id}, Method: get}\n"},
		{"no CodeUri", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: provided.al2023\n"},
		{"relative Path", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Events:\n        A: {Type: Api, Properties: {Path: f, Method: get}}\n"},
		{"no Method", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Events:\n        A: {Type: Api, Properties: {Path: /f}}\n"},
		{"bad Timeout", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Timeout: soon\n"},
		{"no Resources", "Globals: {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sam.Parse([]byte(tt.yaml))
			assert.Error(t, err)
		})
	}
}

// awsTemplate has what the real template declares for AWS IoT Core: a
// function with an SQS event next to its Api event, a function with no
// events at all, and resources that are not functions, using intrinsics in
// both forms.
const awsTemplate = `
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: provided.al2023, Handler: bootstrap}
Resources:
  Api: {Type: AWS::Serverless::Api, Properties: {StageName: v1}}
  IngestFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/ingest/
      Events:
        Readings:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /ingest/readings, Method: post}
        IoTReadings:
          Type: SQS
          Properties:
            Queue: !GetAtt ReadingsQueue.Arn
            BatchSize: 500
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: {Ref: IngestQueueMaxConcurrency}}
  IoTAuthFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/iotauth/, Timeout: 5}
  DeviceAuthorizer:
    Type: AWS::IoT::Authorizer
    Properties:
      AuthorizerName: !Sub "${AWS::StackName}-devices"
      AuthorizerFunctionArn: {"Fn::GetAtt": [IoTAuthFunction, Arn]}
      SigningDisabled: true
  ReadingsTopicRule:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload:
        Sql: "SELECT encode(*, 'base64') AS payload FROM 'tempwatch/+/sensors/+/readings'"
        Actions: [{Sqs: {QueueUrl: !Ref ReadingsQueue, RoleArn: !GetAtt Role.Arn}}]
  ReadingsQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: 5}
`

func TestParseSkipsWhatIsNotAFunctionOrARoute(t *testing.T) {
	tpl, err := sam.Parse([]byte(awsTemplate))
	require.NoError(t, err)
	require.Len(t, tpl.Functions, 2, "only AWS::Serverless::Function resources")
	ingest, iotauth := tpl.Functions[0], tpl.Functions[1]
	assert.Equal(t, "ingest", ingest.Name)
	assert.Equal(t, []sam.Route{{Method: "POST", Path: "/ingest/readings", Function: "ingest", Event: "Readings"}}, ingest.Routes,
		"an SQS event is no route")
	assert.Equal(t, "iotauth", iotauth.Name)
	assert.Equal(t, 5*time.Second, iotauth.Timeout)
	assert.Empty(t, iotauth.Routes, "a function without events serves no route")
	assert.Len(t, tpl.Routes(), 1)
}

// deployTemplate has a function that CloudFormation runs at deploy through
// custom resources (each ServiceToken spelling), one that depends on it, and
// custom resources that name no function of the template.
const deployTemplate = `
Resources:
  MigrateFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/migrate/, Timeout: 900}
  SchemaMigration:
    Type: Custom::SchemaMigration
    Properties:
      ServiceToken: !GetAtt MigrateFunction.Arn
      SchemaVersion: 3
      Nested: {not: scalar}
  SeqForm:
    Type: AWS::CloudFormation::CustomResource
    Properties: {ServiceToken: !GetAtt [MigrateFunction, Arn]}
  LongForm:
    Type: Custom::Long
    Properties: {ServiceToken: {"Fn::GetAtt": [MigrateFunction, Arn]}}
  ElsewhereHandled:
    Type: Custom::Elsewhere
    Properties: {ServiceToken: arn:aws:lambda:us-east-1:000000000000:function:other}
  NotAnArn:
    Type: Custom::Name
    Properties: {ServiceToken: !GetAtt MigrateFunction.FunctionName}
  UsersFunction:
    Type: AWS::Serverless::Function
    DependsOn: SchemaMigration
    Properties: {CodeUri: functions/users/}
  ClientsFunction:
    Type: AWS::Serverless::Function
    DependsOn: [SchemaMigration, SeqForm]
    Properties: {CodeUri: functions/clients/}
`

func TestParseCustomResources(t *testing.T) {
	tpl, err := sam.Parse([]byte(deployTemplate))
	require.NoError(t, err)
	assert.Equal(t, []sam.CustomResource{
		{LogicalID: "LongForm", Type: "Custom::Long", Function: "migrate", Properties: map[string]string{}},
		{LogicalID: "SchemaMigration", Type: "Custom::SchemaMigration", Function: "migrate", Properties: map[string]string{"SchemaVersion": "3"}},
		{LogicalID: "SeqForm", Type: "AWS::CloudFormation::CustomResource", Function: "migrate", Properties: map[string]string{}},
	}, tpl.CustomResources, "only custom resources that a function of the template serves")

	var steps []string
	for _, f := range tpl.DeploySteps() {
		steps = append(steps, f.Name)
	}
	assert.Equal(t, []string{"migrate"}, steps)

	deps := map[string][]string{}
	for _, f := range tpl.Functions {
		deps[f.Name] = f.DependsOn
	}
	assert.Equal(t, map[string][]string{"clients": {"SchemaMigration", "SeqForm"}, "migrate": nil, "users": {"SchemaMigration"}}, deps)
}

const scheduleTemplate = `
Resources:
  ArchiveFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/archive/
      Events:
        List: {Type: Api, Properties: {Path: /dead-letters, Method: get}}
        Expire:
          Type: Schedule
          Properties: {Schedule: rate(1 hour), Input: '{"task":"expire-dead-letters"}'}
        Nightly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: "cron(0 3 * * ? *)", State: DISABLED}
  SilenceFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/silence/
      Events:
        Sweep: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
        Off: {Type: Schedule, Properties: {Schedule: rate(5 minutes), Enabled: false}}
`

func TestParseSchedules(t *testing.T) {
	tpl, err := sam.Parse([]byte(scheduleTemplate))
	require.NoError(t, err)
	assert.Equal(t, []sam.Schedule{
		{Function: "archive", Event: "Expire", Expression: "rate(1 hour)", Input: `{"task":"expire-dead-letters"}`},
		{Function: "archive", Event: "Nightly", Expression: "cron(0 3 * * ? *)", Disabled: true},
		{Function: "silence", Event: "Off", Expression: "rate(5 minutes)", Disabled: true},
		{Function: "silence", Event: "Sweep", Expression: "rate(1 minute)"},
	}, tpl.Schedules())
	assert.Len(t, tpl.Functions[0].Routes, 1, "a schedule is no route")

	for name, yaml := range map[string]string{
		"no expression":    "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Events:\n        S: {Type: Schedule, Properties: {Input: '{}'}}\n",
		"input not a text": "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/f/\n      Events:\n        S: {Type: Schedule, Properties: {Schedule: rate(1 minute), Input: {task: x}}}\n",
	} {
		_, err := sam.Parse([]byte(yaml))
		assert.Error(t, err, name)
	}
}

func TestScheduleInterval(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration // 0: an error naming the function, the event and the expression
	}{
		{"rate(1 minute)", time.Minute},
		{"rate(5 minutes)", 5 * time.Minute},
		{"rate(1 hour)", time.Hour},
		{"rate(12 hours)", 12 * time.Hour},
		{"rate(1 day)", 24 * time.Hour},
		{"rate(30 days)", 30 * 24 * time.Hour},
		{"rate(1 minutes)", 0},
		{"rate(2 minute)", 0},
		{"rate(0 minutes)", 0},
		{"rate(-1 minutes)", 0},
		{"rate(+5 minutes)", 0},
		{"rate(05 minutes)", 0},
		{"rate(1.5 hours)", 0},
		{"rate(5  minutes)", 0},
		{"rate( 5 minutes)", 0},
		{"rate(5 seconds)", 0},
		{"rate(5 weeks)", 0},
		{"rate(5)", 0},
		{"rate(5 minutes", 0},
		{"rate()", 0},
		{"RATE(1 minute)", 0},
		{"rate(99999999999999 days)", 0},
		{"cron(0 3 * * ? *)", 0},
		{"at(2026-03-04T12:00:00)", 0},
		{"every minute", 0},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := sam.Schedule{Function: "silence", Event: "Sweep", Expression: tt.expr}.Interval()
			if tt.want == 0 {
				require.Error(t, err, "Interval(%q) = %v, want an error", tt.expr, got)
				assert.Contains(t, err.Error(), "function silence, schedule Sweep: \""+tt.expr+"\"")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "Interval(%q)", tt.expr)
		})
	}
}
