package tempwatch_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), tempwatch.EINTERNAL},
		{"direct", tempwatch.Errorf(tempwatch.ENOTFOUND, "no"), tempwatch.ENOTFOUND},
		{"wrapped", fmt.Errorf("ctx: %w", tempwatch.Errorf(tempwatch.ECONFLICT, "dup")), tempwatch.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tempwatch.ErrorCode(tt.err), "ErrorCode(%v)", tt.err)
		})
	}
}

func TestErrorMessageHidesInternals(t *testing.T) {
	assert.Equal(t, "An internal error occurred.", tempwatch.ErrorMessage(errors.New("pq: password leaked")))
	assert.Equal(t, "Sensor not found.", tempwatch.ErrorMessage(tempwatch.Errorf(tempwatch.ENOTFOUND, "Sensor not found.")))
}

func TestValidation(t *testing.T) {
	v := tempwatch.Validation{}
	assert.NoError(t, v.Err())
	v.Add("name", "is required")
	v.Add("name", "second message is ignored")
	v.Add("slug", "is too long")
	err := v.Err()
	assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err))
	assert.Equal(t, map[string]string{"name": "is required", "slug": "is too long"}, tempwatch.ErrorFields(err))
}
