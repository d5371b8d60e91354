package postgres

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlan(t *testing.T) {
	sum := func(c string) string { return strings.Repeat(c, 64) }
	build := []Migration{{Version: 1, Name: "001_baseline.sql", SHA256: sum("1")}, {Version: 3, Name: "003_c.sql", SHA256: sum("3")}}
	tests := []struct {
		name    string
		applied []applied
		pending []string
		err     string
	}{
		{"fresh", nil, []string{"001_baseline.sql", "003_c.sql"}, ""},
		{"one behind", []applied{{1, "001_baseline.sql", sum("1")}}, []string{"003_c.sql"}, ""},
		{"up to date", []applied{{1, "001_baseline.sql", sum("1")}, {3, "003_c.sql", sum("3")}}, nil, ""},
		{"renamed file, same content", []applied{{1, "001_core.sql", sum("1")}, {3, "003_c.sql", sum("3")}}, nil, ""},
		{"ahead: a newer build's migration", []applied{{1, "001_baseline.sql", sum("1")}, {3, "003_c.sql", sum("3")}, {4, "004_d.sql", sum("4")}}, nil, ""},
		{"changed after it was applied", []applied{{1, "001_baseline.sql", sum("f")}}, nil,
			"migration 001_baseline.sql was changed after it was applied (the database recorded sha256 " + sum("f") + ", the file's is " + sum("1") + ")"},
		{"removed after it was applied", []applied{{1, "001_baseline.sql", sum("1")}, {2, "002_b.sql", sum("2")}, {3, "003_c.sql", sum("3")}}, nil,
			"the database has applied migration 002_b.sql, which this build does not have"},
		{"new one numbered below an applied one", []applied{{1, "001_baseline.sql", sum("1")}, {4, "004_d.sql", sum("4")}}, nil,
			"migration 003_c.sql is numbered below 004_d.sql, which the database has applied already: renumber it above 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plan(tt.applied, build)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			assert.Equal(t, tt.pending, names, "plan(%v) pending", tt.applied)
		})
	}
}
