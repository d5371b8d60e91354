package deploycheck_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
)

func TestCheckOperations(t *testing.T) {
	t.Run("real tree", func(t *testing.T) { assert.Empty(t, deploycheck.CheckOperations(repoRoot(t))) })
	const proxied = `!If [UseDatabaseProxy, !Join ["", [!Select [0, !Split ["@", !Ref DatabaseURL]], "@", !Ref DatabaseProxyEndpoint, "/", !Select [1, !Split ["/", !Select [1, !Split ["@", !Ref DatabaseURL]]]]]], !Ref DatabaseURL]`
	cases := []struct {
		name  string
		file  string
		edit  func(string) string
		parts []string
	}{
		{"no reserved concurrency", deploycheck.TemplateFile, replace("      ReservedConcurrentExecutions: !Ref IngestReservedConcurrency\n", ""),
			[]string{"IngestFunction has no ReservedConcurrentExecutions"}},
		{"reserved below the queue's concurrency", deploycheck.TemplateFile, func(s string) string {
			return strings.Replace(s, "    Default: 10\n    MinValue: 2\n", "    Default: 3\n    MinValue: 2\n", 1)
		}, []string{"reserved concurrency (3) is below IngestQueueMaxConcurrency (5)"}},
		{"a function without a log group", deploycheck.TemplateFile, replace("      LoggingConfig: {LogGroup: !Ref UsersFunctionLogGroup}\n", ""),
			[]string{"UsersFunction has no LoggingConfig: {LogGroup: !Ref UsersFunctionLogGroup}"}},
		{"a function logs to another's group", deploycheck.TemplateFile, replace("LogGroup: !Ref UsersFunctionLogGroup}", "LogGroup: !Ref AuthFunctionLogGroup}"),
			[]string{"UsersFunction has no LoggingConfig: {LogGroup: !Ref UsersFunctionLogGroup}"}},
		{"the group is not declared", deploycheck.TemplateFile, replace("  UsersFunctionLogGroup:\n", "  UsersLogGroup:\n"),
			[]string{"UsersFunctionLogGroup is not an AWS::Logs::LogGroup"}},
		{"a log group without retention", deploycheck.TemplateFile,
			replace("  AuthFunctionLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties:\n      RetentionInDays: !Ref LogRetentionDays\n",
				"  AuthFunctionLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties: {}\n"),
			[]string{"AuthFunctionLogGroup (the log group of AuthFunction) has no RetentionInDays"}},
		{"a log group named as Lambda names it", deploycheck.TemplateFile,
			replace("  AuthFunctionLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties:\n",
				"  AuthFunctionLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties:\n      LogGroupName: !Sub \"/aws/lambda/${AuthFunction}\"\n"),
			[]string{"AuthFunctionLogGroup sets LogGroupName"}},
		{"no throttles alarm", deploycheck.TemplateFile, replace("MetricName: Throttles", "MetricName: Duration"),
			[]string{"no AWS::CloudWatch::Alarm on AWS/Lambda Throttles"}},
		{"no errors alarm", deploycheck.TemplateFile, replace("MetricName: Errors", "MetricName: Invocations"),
			[]string{"AWS/Lambda Errors"}},
		{"a function ignores the proxy", deploycheck.TemplateFile, func(s string) string {
			i := strings.Index(s, "functions/clients/")
			return s[:i] + strings.Replace(s[i:], "DATABASE_URL: "+proxied, "DATABASE_URL: !Ref DatabaseURL", 1)
		}, []string{"ClientsFunction: with DatabaseProxyEndpoint=", "want \"postgres://tempwatch:p%40ss@tempwatch.proxy-abc"}},
		{"the proxy drops the database name", deploycheck.TemplateFile, func(s string) string {
			return strings.ReplaceAll(s, `"@", !Ref DatabaseProxyEndpoint, "/", !Select [1, !Split ["/", !Select [1, !Split ["@", !Ref DatabaseURL]]]]`, `"@", !Ref DatabaseProxyEndpoint`)
		}, []string{"SensorsFunction: with DatabaseProxyEndpoint="}},
		{"migrate through the proxy", deploycheck.TemplateFile, replace("!If [MigrateWithOwnRole, !Ref MigrateDatabaseURL, !Ref DatabaseURL]", proxied),
			[]string{"MigrateFunction: with DatabaseProxyEndpoint=\"tempwatch.proxy"}},
		{"no proxy parameter", deploycheck.TemplateFile, replace("  DatabaseProxyEndpoint:\n", "  ProxyEndpoint:\n"),
			[]string{"no parameter DatabaseProxyEndpoint"}},
		{"undocumented", "README.md", replace("### Deploying to AWS", "### Deploying"),
			[]string{"README.md", "Deploying to AWS", "DatabaseProxyEndpoint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := MustCopyTree(t, repoRoot(t))
			mustEdit(t, filepath.Join(dir, tc.file), tc.edit)
			assertHasError(t, deploycheck.CheckOperations(dir), tc.parts...)
		})
	}
}
