package sim

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tempwatch/tempwatch/shared/config"
)

// Config is what the simulator runs with: each setting from its flag, else
// its environment variable (compose sets those), else the default.
type Config struct {
	Broker     string        // -broker, MQTT_URL
	APIURL     string        // -api, API_URL
	Token      string        // -token, ADMIN_TOKEN: an admin's bearer token; else log in
	Email      string        // -admin-email, ADMIN_EMAIL
	Password   string        // ADMIN_PASSWORD only: flags show in ps
	Clients    int           // -clients, SIMULATOR_CLIENTS
	Sensors    int           // -sensors, SIMULATOR_SENSORS: per client
	Rate       float64       // -rate, SIMULATOR_RATE: messages per second, all sensors
	Duration   time.Duration // -duration, SIMULATOR_DURATION: 0 until interrupted
	Malformed  float64       // -malformed, SIMULATOR_MALFORMED
	Duplicates float64       // -duplicates, SIMULATOR_DUPLICATES
	Seed       uint64        // -seed, SIMULATOR_SEED
}

// LoadConfig reads the environment through getenv, then args (flags win),
// and reports every bad value at once, naming its variable or flag.
func LoadConfig(args []string, getenv config.Getenv, usage io.Writer) (Config, error) {
	r := config.NewReader(getenv)
	float := func(name string, def float64) float64 {
		v := getenv(name)
		if v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			r.Fail(name, fmt.Sprintf("= %q is not a number", v))
			return def
		}
		return f
	}
	c := Config{
		Broker:     r.URL("MQTT_URL", "tcp://127.0.0.1:1883", "tcp", "mqtt", "ssl", "tls", "mqtts"),
		APIURL:     r.URL("API_URL", "http://127.0.0.1:3000", "http", "https"),
		Token:      getenv("ADMIN_TOKEN"),
		Email:      r.String("ADMIN_EMAIL", "admin@tempwatch.local"),
		Password:   getenv("ADMIN_PASSWORD"),
		Clients:    r.Int("SIMULATOR_CLIENTS", 2, 1, 1000),
		Sensors:    r.Int("SIMULATOR_SENSORS", 5, 1, 10000),
		Rate:       float("SIMULATOR_RATE", 50),
		Duration:   r.Duration("SIMULATOR_DURATION", time.Minute, 0, 1<<62),
		Malformed:  float("SIMULATOR_MALFORMED", 0.01),
		Duplicates: float("SIMULATOR_DUPLICATES", 0.01),
		Seed:       uint64(r.Int("SIMULATOR_SEED", 1, 0, 1<<62)),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Broker, "broker", c.Broker, "MQTT broker URL (env MQTT_URL)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "messages per second, all sensors together (env SIMULATOR_RATE)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to publish, 0 until interrupted (env SIMULATOR_DURATION)")
	fs.IntVar(&c.Clients, "clients", c.Clients, "client companies (env SIMULATOR_CLIENTS)")
	fs.IntVar(&c.Sensors, "sensors", c.Sensors, "sensors per client (env SIMULATOR_SENSORS)")
	fs.Float64Var(&c.Malformed, "malformed", c.Malformed, "share of malformed messages [0,1] (env SIMULATOR_MALFORMED)")
	fs.Float64Var(&c.Duplicates, "duplicates", c.Duplicates, "share of messages sent twice [0,1] (env SIMULATOR_DUPLICATES)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed: sensor offsets and noise (env SIMULATOR_SEED)")
	fs.StringVar(&c.APIURL, "api", c.APIURL, "REST API base URL the clients, sensors and device keys are created through (env API_URL)")
	fs.StringVar(&c.Token, "token", c.Token, "admin bearer token for the API (env ADMIN_TOKEN); else log in as -admin-email with ADMIN_PASSWORD")
	fs.StringVar(&c.Email, "admin-email", c.Email, "admin login for the API (env ADMIN_EMAIL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	// Written so that NaN fails too: every comparison with NaN is false.
	if !(c.Rate > 0 && c.Rate <= 1e6) {
		errs = append(errs, fmt.Errorf("rate (-rate, SIMULATOR_RATE) %g must be in (0, 1e6]", c.Rate))
	}
	if c.Clients < 1 || c.Clients > 1000 {
		errs = append(errs, fmt.Errorf("clients (-clients, SIMULATOR_CLIENTS) %d must be in [1, 1000]", c.Clients))
	}
	if c.Sensors < 1 || c.Sensors > 10000 {
		errs = append(errs, fmt.Errorf("sensors (-sensors, SIMULATOR_SENSORS) %d must be in [1, 10000]", c.Sensors))
	}
	if !share(c.Malformed) {
		errs = append(errs, fmt.Errorf("malformed share (-malformed, SIMULATOR_MALFORMED) %g must be in [0, 1]", c.Malformed))
	}
	if !share(c.Duplicates) {
		errs = append(errs, fmt.Errorf("duplicate share (-duplicates, SIMULATOR_DUPLICATES) %g must be in [0, 1]", c.Duplicates))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration (-duration, SIMULATOR_DURATION) %s must not be negative", c.Duration))
	}
	// Devices log in to the broker with the keys the API hands out, so the
	// simulator always creates its fleet through the API, as an admin.
	if c.Token == "" && c.Password == "" {
		errs = append(errs, fmt.Errorf("creating the clients and sensors needs an admin: ADMIN_TOKEN, or ADMIN_PASSWORD for %s", c.Email))
	}
	return errors.Join(errs...)
}

// share reports whether f is a share in [0, 1] (NaN is not).
func share(f float64) bool { return f >= 0 && f <= 1 }
