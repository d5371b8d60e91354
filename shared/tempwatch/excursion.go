package tempwatch

import (
	"sort"
	"time"
)

// Excursions are a sensor's spells out of its limits, evaluated on measured
// time: the alarms of high and low kind (storage keeps them: see
// postgres' alarm evaluation).
//
// A reading's value holds until the sensor's next reading. For each kind,
// high and low, a sensor is inside or in an excursion:
//   - inside, a reading beyond the limit (above High, below Low) starts an
//     excursion at its time;
//   - in an excursion, a reading back inside by the hysteresis (at or below
//     High-Hysteresis, at or above Low+Hysteresis) clears it at its time;
//     any other reading extends it, and its value may be the new peak.
//
// An excursion is an alarm once it has lasted the delay: it opens at
// Start+Delay if the excursion reached that time (its clearing reading, or
// while it lasts its latest reading, is at or after it).
//
// Because a reading's effect reaches only to the next settled reading (one
// that clears any excursion of its kind and starts none: Settled), a late or
// corrected reading changes only the excursions between the settled reading
// before it and the settled reading after it. ExcursionWindow finds that
// span, so storage re-evaluates it alone, and exactly: the excursions of the
// whole history are the same as those evaluated in one pass.

// Excursion kinds.
const (
	ExcursionHigh = "high"
	ExcursionLow  = "low"
)

// ExcursionRule is what a sensor's excursions are judged by.
type ExcursionRule struct {
	High, Low  *float64 // nil: no limit of that kind
	Delay      time.Duration
	Hysteresis float64 // at least 0
}

// Sample is one reading as excursions see it.
type Sample struct {
	At    time.Time
	Value float64
}

// Excursion is one spell of one kind out of range.
type Excursion struct {
	Kind    string
	Start   time.Time // the first reading beyond the limit
	Last    time.Time // the latest reading of the excursion (its clearing reading not included)
	Cleared time.Time // the clearing reading's time; zero while the excursion lasts
	Peak    float64   // the highest (high) or lowest (low) value of the excursion
}

// Open reports whether the excursion lasts: no reading has cleared it.
func (e Excursion) Open() bool { return e.Cleared.IsZero() }

// Duration is how long the excursion was out of range: until its clearing
// reading, or while it lasts until its latest reading.
func (e Excursion) Duration() time.Duration {
	if e.Open() {
		return e.Last.Sub(e.Start)
	}
	return e.Cleared.Sub(e.Start)
}

// IsAlarm reports whether the excursion has lasted delay, and so is an alarm
// opened at Start+delay.
func (e Excursion) IsAlarm(delay time.Duration) bool { return e.Duration() >= delay }

// kinds are the kinds r has a limit for.
func (r ExcursionRule) kinds() []string {
	var ks []string
	if r.High != nil {
		ks = append(ks, ExcursionHigh)
	}
	if r.Low != nil {
		ks = append(ks, ExcursionLow)
	}
	return ks
}

// beyond reports whether v starts (or extends) an excursion of kind; never
// for a kind without a limit.
func (r ExcursionRule) beyond(kind string, v float64) bool {
	if kind == ExcursionHigh {
		return r.High != nil && v > *r.High
	}
	return r.Low != nil && v < *r.Low
}

// Settled reports whether v clears any excursion of kind and starts none, so
// that evaluation after a reading of v needs no earlier reading.
func (r ExcursionRule) Settled(kind string, v float64) bool {
	if kind == ExcursionHigh {
		return r.High == nil || v <= *r.High-r.Hysteresis
	}
	return r.Low == nil || v >= *r.Low+r.Hysteresis
}

// Step feeds one kind's evaluation the next reading s, in measured-time
// order, after the excursion under way (nil: inside). It returns the
// excursion under way after s, and the one s cleared, if any.
func (r ExcursionRule) Step(kind string, open *Excursion, s Sample) (next, cleared *Excursion) {
	switch {
	case open == nil && r.beyond(kind, s.Value):
		return &Excursion{Kind: kind, Start: s.At, Last: s.At, Peak: s.Value}, nil
	case open == nil:
		return nil, nil
	case r.Settled(kind, s.Value):
		done := *open
		done.Cleared = s.At
		return nil, &done
	}
	ext := *open
	ext.Last = s.At
	if (kind == ExcursionHigh && s.Value > ext.Peak) || (kind == ExcursionLow && s.Value < ext.Peak) {
		ext.Peak = s.Value
	}
	return &ext, nil
}

// Excursions evaluates samples (in measured-time order, one per instant)
// from inside, and returns every excursion of every kind r has a limit for,
// by start time (high before low at the same instant); the last of a kind
// may be open.
func (r ExcursionRule) Excursions(samples []Sample) []Excursion {
	var out []Excursion
	for _, kind := range r.kinds() {
		var open, cleared *Excursion
		for _, s := range samples {
			if open, cleared = r.Step(kind, open, s); cleared != nil {
				out = append(out, *cleared)
			}
		}
		if open != nil {
			out = append(out, *open)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// ExcursionSpan is the part of a sensor's history that readings added,
// corrected or deleted between two times can affect for one kind.
type ExcursionSpan struct {
	// Lo and Hi bound the samples that re-evaluate it, from inside:
	// samples[Lo:Hi].
	Lo, Hi int
	// From and To bound the start times of the excursions it replaces,
	// inclusive; a zero From is the beginning of the history, a zero To its end.
	From, To time.Time
}

// Holds reports whether an excursion starting at t is in the span.
func (s ExcursionSpan) Holds(t time.Time) bool {
	return (s.From.IsZero() || !t.Before(s.From)) && (s.To.IsZero() || !t.After(s.To))
}

// ExcursionWindow is the span of samples (sorted by time, after the change)
// that a change of readings between from and to (inclusive) can affect for
// kind: it starts at the last settled reading before from (or the
// beginning) and ends at the first settled reading after to (or the end).
// The excursions of kind starting in it are those of samples[Lo:Hi]
// evaluated alone; the others stay as they were.
func (r ExcursionRule) ExcursionWindow(kind string, samples []Sample, from, to time.Time) ExcursionSpan {
	var span ExcursionSpan
	lo := sort.Search(len(samples), func(i int) bool { return !samples[i].At.Before(from) }) - 1
	for lo >= 0 && !r.Settled(kind, samples[lo].Value) {
		lo--
	}
	if lo >= 0 {
		span.Lo, span.From = lo, samples[lo].At
	}
	hi := sort.Search(len(samples), func(i int) bool { return samples[i].At.After(to) })
	for hi < len(samples) && !r.Settled(kind, samples[hi].Value) {
		hi++
	}
	span.Hi = len(samples)
	if hi < len(samples) {
		span.Hi, span.To = hi+1, samples[hi].At
	}
	return span
}
