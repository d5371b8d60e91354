package delivery

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter.
type Backoff struct {
	Base time.Duration // first retry waits up to this long
	Max  time.Duration // no wait is longer
	// Rand returns a value in [0, 1); nil means math/rand/v2.
	Rand func() float64
}

// Delay is the wait before retry number attempt (1 for the first retry):
// a uniform draw from [Base/2, min(Max, Base·2^(attempt-1))]. The floor of
// Base/2 keeps a tight loop from hammering a function that is down.
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		return 0
	}
	ceil := b.Base
	for i := 1; i < attempt && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	lo := min(b.Base/2, ceil)
	return lo + time.Duration(r()*float64(ceil-lo))
}
