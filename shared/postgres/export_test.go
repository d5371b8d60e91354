package postgres

import "strings"

// WithoutAlarmEvaluation returns a copy of s that writes batches as before
// alarms and the rollups' new columns existed, for the benchmark's
// same-run reference: writeReadingsSQL without the MKT terms (the rollups'
// mkt_sum stays NULL; the limit rollups' trigger finds no limits on the
// reference's sensors and stops at once).
func WithoutAlarmEvaluation(s *ReadingStore) *ReadingStore {
	c := *s
	c.referenceSQL = withoutMKT(writeReadingsSQL)
	return &c
}

func withoutMKT(q string) string {
	for _, cut := range [][2]string{
		{", mkt_sum)", ")"},
		{",\n\t\tsum(mkt_term(value))", ""},
		{",\n\t\tmkt_sum = r.mkt_sum + excluded.mkt_sum", ""},
	} {
		if !strings.Contains(q, cut[0]) {
			panic("WithoutAlarmEvaluation: writeReadingsSQL changed; no " + cut[0])
		}
		q = strings.Replace(q, cut[0], cut[1], 1)
	}
	return q
}
