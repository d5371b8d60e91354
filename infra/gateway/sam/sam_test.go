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
