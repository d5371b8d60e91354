package postgres

// WithoutAlarmEvaluation returns a copy of s that writes batches as before
// alarms existed, for the benchmark's same-run reference.
func WithoutAlarmEvaluation(s *ReadingStore) *ReadingStore {
	c := *s
	c.withoutAlarms = true
	return &c
}
