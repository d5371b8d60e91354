package console

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadAssetsNamesFilesByPathAndTypesThemByExtension(t *testing.T) {
	assets, err := loadAssets(fstest.MapFS{
		"index.html":        {Data: []byte("<!doctype html>")},
		"console.mjs":       {Data: []byte("// entry")},
		"views/clients.mjs": {Data: []byte("// a view")},
		"console.css":       {Data: []byte("body {}")},
	})
	require.NoError(t, err)
	got := map[string]string{}
	for name, a := range assets {
		assert.Equal(t, name, a.Name)
		got[name] = a.ContentType
	}
	assert.Equal(t, map[string]string{
		"index.html":        "text/html; charset=utf-8",
		"console.mjs":       "text/javascript; charset=utf-8",
		"views/clients.mjs": "text/javascript; charset=utf-8",
		"console.css":       "text/css; charset=utf-8",
	}, got, "files by path, folders left out")
}

func TestLoadAssetsRefusesAFileOfAnUnknownKind(t *testing.T) {
	for _, name := range []string{"console.js", "views/clients.ts", "console.mjs.map", "README"} {
		t.Run(name, func(t *testing.T) {
			_, err := loadAssets(fstest.MapFS{"console.mjs": {}, name: {Data: []byte("x")}})
			assert.ErrorContains(t, err, name+": no content type for its extension")
		})
	}
}
