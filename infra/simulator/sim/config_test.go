package sim_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

func TestLoadConfig(t *testing.T) {
	compose := map[string]string{ // as docker-compose.yml's simulator service sets them
		"MQTT_URL": "tcp://emqx:1883", "API_URL": "http://gateway:3000",
		"ADMIN_EMAIL": "sim@tempwatch.local", "ADMIN_PASSWORD": "a long enough password",
		"SIMULATOR_CLIENTS": "3", "SIMULATOR_SENSORS": "10", "SIMULATOR_RATE": "4.5",
		"SIMULATOR_DURATION": "0s", "SIMULATOR_MALFORMED": "0", "SIMULATOR_DUPLICATES": "0.5", "SIMULATOR_SEED": "7",
	}
	with := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return compose[k]
		}
	}
	tests := []struct {
		name    string
		env     func(string) string
		args    []string
		want    func(c *sim.Config)
		wantErr []string
	}{
		{name: "environment", env: with(nil), want: func(c *sim.Config) {}},
		{name: "flags win", env: with(nil), args: []string{"-rate", "9", "-sensors", "2", "-duration", "1m", "-broker", "tcp://other:1883"},
			want: func(c *sim.Config) { c.Rate, c.Sensors, c.Duration, c.Broker = 9, 2, time.Minute, "tcp://other:1883" }},
		{name: "token instead of password", env: with(map[string]string{"ADMIN_PASSWORD": "", "ADMIN_TOKEN": "tok"}),
			want: func(c *sim.Config) { c.Password, c.Token = "", "tok" }},
		{name: "bad values named", env: with(map[string]string{"SIMULATOR_RATE": "fast", "SIMULATOR_SENSORS": "0", "SIMULATOR_SEED": "-1"}),
			wantErr: []string{"SIMULATOR_RATE", "fast", "SIMULATOR_SENSORS", "SIMULATOR_SEED"}},
		{name: "out of range", env: with(map[string]string{"SIMULATOR_MALFORMED": "2"}), wantErr: []string{"SIMULATOR_MALFORMED", "[0, 1]"}},
		{name: "rate NaN", env: with(map[string]string{"SIMULATOR_RATE": "NaN"}), wantErr: []string{"SIMULATOR_RATE", "NaN", "(0, 1e6]"}},
		{name: "rate +Inf", env: with(map[string]string{"SIMULATOR_RATE": "+Inf"}), wantErr: []string{"SIMULATOR_RATE", "(0, 1e6]"}},
		{name: "rate NaN by flag", env: with(nil), args: []string{"-rate", "nan"}, wantErr: []string{"-rate", "(0, 1e6]"}},
		{name: "malformed NaN", env: with(map[string]string{"SIMULATOR_MALFORMED": "NaN"}), wantErr: []string{"SIMULATOR_MALFORMED", "[0, 1]"}},
		{name: "duplicates NaN", env: with(map[string]string{"SIMULATOR_DUPLICATES": "nan"}), wantErr: []string{"SIMULATOR_DUPLICATES", "[0, 1]"}},
		{name: "duplicates -Inf by flag", env: with(nil), args: []string{"-duplicates", "-Inf"}, wantErr: []string{"-duplicates", "[0, 1]"}},
		{name: "an admin required", env: with(map[string]string{"ADMIN_PASSWORD": ""}), wantErr: []string{"ADMIN_PASSWORD", "sim@tempwatch.local"}},
		{name: "broker URL", env: with(map[string]string{"MQTT_URL": "http://emqx"}), wantErr: []string{"MQTT_URL", "scheme"}},
		{name: "stray argument", env: with(nil), args: []string{"extra"}, wantErr: []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sim.LoadConfig(tt.args, tt.env, io.Discard)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, part := range tt.wantErr {
					assert.Contains(t, err.Error(), part)
				}
				return
			}
			require.NoError(t, err)
			want := sim.Config{Broker: "tcp://emqx:1883", APIURL: "http://gateway:3000", Email: "sim@tempwatch.local",
				Password: "a long enough password", Clients: 3, Sensors: 10, Rate: 4.5, Duration: 0,
				Malformed: 0, Duplicates: 0.5, Seed: 7}
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}
