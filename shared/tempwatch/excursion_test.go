package tempwatch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// samples builds readings a minute apart from t0.
func samples(values ...float64) []tempwatch.Sample {
	out := make([]tempwatch.Sample, len(values))
	for i, v := range values {
		out[i] = tempwatch.Sample{At: t0.Add(time.Duration(i) * time.Minute), Value: v}
	}
	return out
}

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func TestExcursions(t *testing.T) {
	cold := tempwatch.ExcursionRule{High: ptr(5), Low: ptr(2), Hysteresis: 0.5}
	tests := []struct {
		name   string
		rule   tempwatch.ExcursionRule
		values []float64
		want   []tempwatch.Excursion
	}{
		{"inside throughout", cold, []float64{3, 4, 4.9, 2.1}, nil},
		{"the issue's cold room: 6.5 to 8.1 under a 5 °C limit", cold, []float64{4, 6.5, 7.2, 8.1, 6.9, 4.4},
			[]tempwatch.Excursion{{Kind: "high", Start: minute(1), Last: minute(4), Cleared: minute(5), Peak: 8.1}}},
		{"the hysteresis band extends, it does not clear", cold, []float64{6, 4.8, 4.6, 4.5},
			[]tempwatch.Excursion{{Kind: "high", Start: minute(0), Last: minute(2), Cleared: minute(3), Peak: 6}}},
		{"the band starts nothing", cold, []float64{4.8, 5, 4.7}, nil},
		{"still open", cold, []float64{3, 5.5, 5.1},
			[]tempwatch.Excursion{{Kind: "high", Start: minute(1), Last: minute(2), Peak: 5.5}}},
		{"low, with its own hysteresis", cold, []float64{3, 1.5, 0.9, 2.3, 2.5},
			[]tempwatch.Excursion{{Kind: "low", Start: minute(1), Last: minute(3), Cleared: minute(4), Peak: 0.9}}},
		{"high then low", cold, []float64{6, 1},
			[]tempwatch.Excursion{
				{Kind: "high", Start: minute(0), Last: minute(0), Cleared: minute(1), Peak: 6},
				{Kind: "low", Start: minute(1), Last: minute(1), Peak: 1}}},
		{"only a high limit", tempwatch.ExcursionRule{High: ptr(5)}, []float64{-40, 5.01, 5},
			[]tempwatch.Excursion{{Kind: "high", Start: minute(1), Last: minute(1), Cleared: minute(2), Peak: 5.01}}},
		{"no limits", tempwatch.ExcursionRule{}, []float64{-40, 99}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.rule.Excursions(samples(tt.values...)))
		})
	}
}

func TestExcursionDelay(t *testing.T) {
	e := tempwatch.Excursion{Start: minute(0), Last: minute(9), Cleared: minute(10)}
	assert.Equal(t, 10*time.Minute, e.Duration(), "until the clearing reading")
	assert.True(t, e.IsAlarm(10*time.Minute))
	assert.False(t, e.IsAlarm(11*time.Minute))
	e.Cleared = time.Time{}
	assert.Equal(t, 9*time.Minute, e.Duration(), "while open, until the latest reading")
	assert.True(t, e.IsAlarm(0), "no delay: every excursion is an alarm")
}

// bruteExcursions is the oracle: each reading labelled out, in or "as
// before" (the hysteresis band), excursions the maximal runs of out labels.
func bruteExcursions(r tempwatch.ExcursionRule, ss []tempwatch.Sample) []tempwatch.Excursion {
	var out []tempwatch.Excursion
	for _, kind := range []string{"high", "low"} {
		limit := r.High
		if kind == "low" {
			limit = r.Low
		}
		if limit == nil {
			continue
		}
		over := func(v float64) bool {
			if kind == "high" {
				return v > *limit
			}
			return v < *limit
		}
		back := func(v float64) bool {
			if kind == "high" {
				return v <= *limit-r.Hysteresis
			}
			return v >= *limit+r.Hysteresis
		}
		label := make([]bool, len(ss)) // true: in an excursion after this reading
		for i, s := range ss {
			prev := i > 0 && label[i-1]
			label[i] = over(s.Value) || (prev && !back(s.Value))
		}
		for i := 0; i < len(ss); i++ {
			if !label[i] {
				continue
			}
			e := tempwatch.Excursion{Kind: kind, Start: ss[i].At, Peak: ss[i].Value}
			j := i
			for ; j < len(ss) && label[j]; j++ {
				e.Last = ss[j].At
				if kind == "high" {
					e.Peak = max(e.Peak, ss[j].Value)
				} else {
					e.Peak = min(e.Peak, ss[j].Value)
				}
			}
			if j < len(ss) {
				e.Cleared = ss[j].At
			}
			out = append(out, e)
			i = j
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// randomRule and randomValue put many readings near the limits and in the
// hysteresis bands, where the state depends on history.
func randomRule(rng *rand.Rand) tempwatch.ExcursionRule {
	r := tempwatch.ExcursionRule{Hysteresis: float64(rng.IntN(3)) * 0.5}
	if rng.IntN(5) > 0 {
		r.High = ptr(8)
	}
	if rng.IntN(5) > 0 {
		r.Low = ptr(2)
	}
	return r
}

func randomValue(rng *rand.Rand) float64 { return float64(rng.IntN(25))*0.5 - 1 }

func TestExcursionsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		r := randomRule(rng)
		values := make([]float64, rng.IntN(40))
		for i := range values {
			values[i] = randomValue(rng)
		}
		ss := samples(values...)
		require.Equal(t, bruteExcursions(r, ss), r.Excursions(ss), "%s values %v", describe(r), values)
	}
}

// history is a sensor's readings as storage holds them, with its stored
// excursions, kept up to date the way ingest will: by re-evaluating only
// ExcursionWindow's span around each change.
type history struct {
	rule    tempwatch.ExcursionRule
	samples []tempwatch.Sample // sorted, one per instant
	stored  []tempwatch.Excursion
}

// apply adds the batch (a reading at a taken instant is a duplicate and
// changes nothing unless correct is set, when it replaces the value; a NaN
// value deletes it), then re-evaluates the touched span.
func (h *history) apply(batch []tempwatch.Sample, correct bool) {
	from, to := batch[0].At, batch[0].At
	for _, s := range batch {
		from, to = minTime(from, s.At), maxTime(to, s.At)
		i, found := slices.BinarySearchFunc(h.samples, s.At, func(e tempwatch.Sample, at time.Time) int { return e.At.Compare(at) })
		switch {
		case found && s.Value != s.Value:
			h.samples = slices.Delete(h.samples, i, i+1)
		case found && correct:
			h.samples[i] = s
		case !found && s.Value == s.Value:
			h.samples = slices.Insert(h.samples, i, s)
		}
	}
	for _, kind := range []string{"high", "low"} {
		if (kind == "high" && h.rule.High == nil) || (kind == "low" && h.rule.Low == nil) {
			continue
		}
		span := h.rule.ExcursionWindow(kind, h.samples, from, to)
		kept := h.stored[:0:0]
		for _, e := range h.stored {
			if e.Kind != kind || !span.Holds(e.Start) {
				kept = append(kept, e)
			}
		}
		only := h.rule
		if kind == "high" {
			only.Low = nil
		} else {
			only.High = nil
		}
		h.stored = append(kept, only.Excursions(h.samples[span.Lo:span.Hi])...)
	}
	sort.SliceStable(h.stored, func(i, j int) bool {
		if !h.stored[i].Start.Equal(h.stored[j].Start) {
			return h.stored[i].Start.Before(h.stored[j].Start)
		}
		return h.stored[i].Kind == "high" && h.stored[j].Kind == "low"
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestExcursionWindowIsExact: readings arriving late, out of order, twice,
// corrected and deleted, with only the window re-evaluated after each batch,
// leave exactly the excursions of one pass over the final history.
func TestExcursionWindowIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 1000 {
		h := &history{rule: randomRule(rng)}
		n := 1 + rng.IntN(60)
		all := make([]tempwatch.Sample, n)
		for i := range all {
			all[i] = tempwatch.Sample{At: minute(i), Value: randomValue(rng)}
		}
		// Mostly in order with late stragglers, in batches of 1 to 8.
		order := rng.Perm(n)
		if rng.IntN(2) == 0 {
			slices.Sort(order)
			for k := 0; k < n/4; k++ {
				i, j := rng.IntN(n), rng.IntN(n)
				order[i], order[j] = order[j], order[i]
			}
		}
		for len(order) > 0 {
			k := min(len(order), 1+rng.IntN(8))
			batch := make([]tempwatch.Sample, 0, k+1)
			for _, i := range order[:k] {
				batch = append(batch, all[i])
			}
			if rng.IntN(4) == 0 { // a duplicate with another value changes nothing
				d := all[order[0]]
				d.Value = randomValue(rng)
				batch = append(batch, d)
			}
			order = order[k:]
			h.apply(batch, false)
			require.Equal(t, h.rule.Excursions(h.samples), orNil(h.stored), "round %d after a batch: %s", round, describe(h.rule))
		}
		for range 1 + rng.IntN(4) { // corrections and deletions
			s := h.samples[rng.IntN(len(h.samples))]
			if rng.IntN(3) == 0 {
				s.Value = nan()
			} else {
				s.Value = randomValue(rng)
			}
			h.apply([]tempwatch.Sample{s}, true)
			require.Equal(t, h.rule.Excursions(h.samples), orNil(h.stored), "round %d after a correction: %s", round, describe(h.rule))
			if len(h.samples) == 0 {
				break
			}
		}
	}
}

// describe spells r out, its limits' values rather than their addresses.
func describe(r tempwatch.ExcursionRule) string {
	limit := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("high %s, low %s, hysteresis %g", limit(r.High), limit(r.Low), r.Hysteresis)
}

// orNil is es, or nil when empty, as Excursions answers for none.
func orNil(es []tempwatch.Excursion) []tempwatch.Excursion {
	if len(es) == 0 {
		return nil
	}
	return es
}

func nan() float64 { return math.NaN() }
