package batcher

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQueueIsFIFOAcrossWrapsAndGrowth(t *testing.T) {
	var q queue[int]
	var model []int
	r := rand.New(rand.NewPCG(1, 2))
	next := 0
	for range 20000 {
		if r.IntN(3) > 0 || len(model) == 0 { // grows on average, wrapping as it goes
			q.push(next)
			model = append(model, next)
			next++
			continue
		}
		require.Equal(t, model[0], q.pop())
		model = model[1:]
		require.Equal(t, len(model), q.n)
	}
	for len(model) > 0 {
		require.Equal(t, model[0], q.pop())
		model = model[1:]
	}
	require.Nil(t, q.buf, "an emptied large queue lets its storage go")
}
