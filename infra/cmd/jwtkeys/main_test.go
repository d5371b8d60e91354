package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// What it prints loads as the auth function's and a verifier's configuration,
// and a token signed with the one verifies with the other.
func TestPrintsAMatchingPair(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, "2026-12"))
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		env[k] = v
	}
	require.Len(t, env, 2)
	r := config.NewReader(config.MapEnv(env))
	signer, verifier := auth.LoadJWTSigner(r), auth.LoadJWTVerifier(r)
	require.NoError(t, r.Err())
	assert.Equal(t, "2026-12", signer.ActiveKID)
	tok, err := auth.NewIssuer(signer).Issue(tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}, "")
	require.NoError(t, err)
	_, err = auth.NewVerifier(verifier).Verify(tok.Token)
	assert.NoError(t, err)

	var again bytes.Buffer
	require.NoError(t, run(&again, "2026-12"))
	assert.NotEqual(t, out.String(), again.String(), "every run makes a new key")
}

func TestRefusesAKidTheListCannotHold(t *testing.T) {
	for _, kid := range []string{"", "a:b", "a,b", "a b", strings.Repeat("k", 65)} {
		assert.Error(t, run(&bytes.Buffer{}, kid), "kid %q", kid)
	}
}
