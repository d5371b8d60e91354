package postgres

// SetChunk makes the sweep lock and open at most n sensors per statement,
// so tests cross chunk boundaries with a few sensors.
func (s *SilenceStore) SetChunk(n int) { s.chunk = n }
