package stack

// KillSupervised ends the running instance of the supervised server name
// ("embedded MQTT broker", "embedded FerretDB", "bridge") as a crash would,
// for tests that watch devstack bring it back.
func (s *Stack) KillSupervised(name string) { s.supervised[name].killCurrent() }

// Restarts is how often devstack restarted the supervised server name.
func (s *Stack) Restarts(name string) int64 { return s.supervised[name].restarts.Load() }
