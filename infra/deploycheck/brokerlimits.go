package deploycheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/infra/embedded/broker"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The outage budget the shipped broker configurations cover: the bridge
// may be away this long at this rate of readings, all devices together,
// without a reading being dropped by the broker. README, "Broker
// configuration", states it for operators.
const (
	BudgetOutage   = 10 * time.Minute
	BudgetRate     = 200 // readings per second
	BudgetMessages = BudgetRate * int64(BudgetOutage/time.Second)
	// BudgetPayload is the average payload size the byte bounds are sized
	// for; a reading is far smaller, extra vendor fields make it larger.
	BudgetPayload = 1 << 10
	// PacketHeaders is what a PUBLISH adds to its payload: fixed header,
	// topic, packet id and, over MQTT 5, properties.
	PacketHeaders = 1 << 10
	// emqxHeapPerMessage is what one queued message is allowed to cost the
	// heap of the EMQX process holding the session (the message record, its
	// topic and small payloads live there; a copying GC needs room twice).
	emqxHeapPerMessage = 2 << 10
)

// MosquittoConfig is the configuration shipped for Mosquitto operators.
const MosquittoConfig = "infra/mosquitto/tempwatch.conf"

// CheckBrokerLimits checks that the shipped EMQX configuration (the one
// docker-compose.yml mounts) and Mosquitto configuration keep readings
// through the outage budget for the bridge as compose configures it: the
// session queue holds BudgetMessages, the in-flight window covers the
// bridge's MAX_IN_FLIGHT, and the packet limit lets a full payload in and
// nothing much larger.
func CheckBrokerLimits(ctx context.Context, root string) []error {
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return []error{err}
	}
	svc, ok := p.Services["bridge"]
	if !ok {
		return []error{fmt.Errorf("%s: no bridge service", ComposeFile)}
	}
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	cfg, err := bridge.Load(config.MapEnv(env))
	if err != nil {
		return []error{fmt.Errorf("%s: service bridge: %w", ComposeFile, err)}
	}
	var errs []error
	if emqx, ok := p.Services["emqx"]; ok {
		for name := range emqx.Environment {
			if strings.HasPrefix(name, "EMQX_MQTT__") || strings.HasPrefix(name, "EMQX_FORCE_SHUTDOWN__") {
				errs = append(errs, fmt.Errorf("%s: service emqx sets %s: the broker limits live in %s, where they are checked", ComposeFile, name, EMQXConfig))
			}
		}
	}
	errs = append(errs, checkEMQXLimits(root, cfg.MaxInFlight, cfg.Broker.MaxInFlight)...)
	errs = append(errs, checkPacketSize("infra/embedded/broker", "MaxPacketSize", broker.MaxPacketSize)...)
	return append(errs, checkMosquittoLimits(root, cfg.MaxInFlight)...)
}

func checkEMQXLimits(root string, maxInFlight, stated int) []error {
	conf, err := ParseHOCON(filepath.Join(root, EMQXConfig))
	if err != nil {
		return []error{err}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{EMQXConfig}, args...)...))
	}
	intSetting := func(key string, parse func(string) (int64, error)) (int64, bool) {
		v, ok := conf[key]
		if !ok {
			fail("%s is not set (EMQX's default does not cover the outage budget)", key)
			return 0, false
		}
		n, err := parse(v)
		if err != nil {
			fail("%s = %s: %v", key, v, err)
			return 0, false
		}
		return n, true
	}
	if n, ok := intSetting("mqtt.max_mqueue_len", parseInt); ok && n < BudgetMessages {
		fail("mqtt.max_mqueue_len = %d is under the outage budget of %d messages (%s at %d/s)", n, BudgetMessages, BudgetOutage, BudgetRate)
	}
	if v := conf["mqtt.mqueue_store_qos0"]; v != "false" {
		fail("mqtt.mqueue_store_qos0 must be false (QoS 0 messages would take the readings' places in the queue)")
	}
	if n, ok := intSetting("mqtt.max_inflight", parseInt); ok {
		if n < int64(maxInFlight) {
			fail("mqtt.max_inflight = %d is under the bridge's MAX_IN_FLIGHT = %d", n, maxInFlight)
		}
		if stated != 0 && int64(stated) != n {
			fail("mqtt.max_inflight = %d, but the compose bridge states BROKER_MAX_INFLIGHT = %d", n, stated)
		}
	}
	if n, ok := intSetting("mqtt.max_packet_size", parseBytes); ok {
		errs = append(errs, checkPacketSize(EMQXConfig, "mqtt.max_packet_size", n)...)
	}
	if d, ok := intSetting("mqtt.session_expiry_interval", parseSeconds); ok && time.Duration(d)*time.Second <= BudgetOutage {
		fail("mqtt.session_expiry_interval = %s must outlast the outage budget of %s", conf["mqtt.session_expiry_interval"], BudgetOutage)
	}
	if n, ok := intSetting("force_shutdown.max_heap_size", parseBytes); ok && n < BudgetMessages*emqxHeapPerMessage {
		fail("force_shutdown.max_heap_size = %s kills the bridge's session before its queue holds the budget (want at least %d bytes)", conf["force_shutdown.max_heap_size"], BudgetMessages*emqxHeapPerMessage)
	}
	return errs
}

func checkMosquittoLimits(root string, maxInFlight int) []error {
	conf, err := ParseMosquittoConf(filepath.Join(root, MosquittoConfig))
	if err != nil {
		return []error{err}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{MosquittoConfig}, args...)...))
	}
	num := func(key string) (int64, bool) {
		v, ok := conf[key]
		if !ok {
			fail("%s is not set (Mosquitto's default does not cover the outage budget)", key)
			return 0, false
		}
		n, err := parseInt(v)
		if err != nil {
			fail("%s %s: %v", key, v, err)
			return 0, false
		}
		return n, true
	}
	// 0 means unlimited to Mosquitto: not a bound, so it fails too.
	if n, ok := num("max_queued_messages"); ok && n < BudgetMessages {
		fail("max_queued_messages %d is not a bound covering the outage budget of %d messages (%s at %d/s)", n, BudgetMessages, BudgetOutage, BudgetRate)
	}
	if n, ok := num("max_queued_bytes"); ok && n < BudgetMessages*BudgetPayload {
		fail("max_queued_bytes %d is not a bound covering %d messages of %d bytes", n, BudgetMessages, BudgetPayload)
	}
	if n, ok := num("max_inflight_messages"); ok && n < int64(maxInFlight) {
		fail("max_inflight_messages %d is not a window covering the bridge's MAX_IN_FLIGHT = %d", n, maxInFlight)
	}
	if n, ok := num("max_packet_size"); ok {
		errs = append(errs, checkPacketSize(MosquittoConfig, "max_packet_size", n)...)
	}
	if n, ok := num("autosave_interval"); ok && (n < 1 || n > 60) {
		fail("autosave_interval %d: want a save every few seconds (1 to 60), not only at shutdown or rarely", n)
	}
	for key, want := range map[string]string{"persistence": "true", "autosave_on_changes": "false", "queue_qos0_messages": "false", "allow_anonymous": "false"} {
		if conf[key] != want {
			fail("%s must be %s", key, want)
		}
	}
	for _, key := range []string{"password_file", "acl_file"} {
		if conf[key] == "" {
			fail("%s is not set: devices and the bridge must authenticate", key)
		}
	}
	return errs
}

// checkPacketSize wants a limit that admits the largest payload with its
// headers and is a limit, not a formality.
func checkPacketSize(file, key string, n int64) []error {
	lo, hi := int64(tempwatch.MaxPayloadBytes+PacketHeaders), int64(2*tempwatch.MaxPayloadBytes)
	if n < lo || n > hi {
		return []error{fmt.Errorf("%s: %s = %d bytes: want the payload limit plus headers, %d to %d bytes", file, key, n, lo, hi)}
	}
	return nil
}

// ParseMosquittoConf reads "key value" lines (comments and blank lines
// skipped). A key set twice is an error unless Mosquitto allows it
// (listener); only the last listener is kept.
func ParseMosquittoConf(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if _, dup := conf[key]; dup && key != "listener" {
			return nil, fmt.Errorf("%s:%d: %s is set twice", path, n, key)
		}
		conf[key] = strings.TrimSpace(value)
	}
	return conf, sc.Err()
}

var (
	hoconKey   = `[A-Za-z_][A-Za-z0-9_.]*|"[^"]*"`
	hoconOpen  = regexp.MustCompile(`^(` + hoconKey + `)\s*\{$`)
	hoconArray = regexp.MustCompile(`^(` + hoconKey + `)\s*=\s*\[$`)
	hoconValue = regexp.MustCompile(`^(` + hoconKey + `)\s*[=:]\s*(.+?)$`)
	hoconBlock = regexp.MustCompile(`^(` + hoconKey + `)\s*\{\s*(` + hoconKey + `)\s*=\s*([^{}]+?)\s*\}$`)
)

// ParseHOCON reads the subset of HOCON that emqx.conf is written in: one
// statement per line — "key = value", "key {", "}", "key = [", "]", "{"
// (an array element) and "key { inner = value }" — with keys joined by
// dots along the nesting. Values inside arrays are not returned. Anything
// else (a value spread over lines, includes, substitutions, a key set
// twice) is an error rather than a guess.
func ParseHOCON(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	conf := map[string]string{}
	var stack []string // key of each open block; "[" for an array or its elements
	inArray := func() bool { return len(stack) > 0 && stack[len(stack)-1] == "[" }
	set := func(n int, key, value string) error {
		for _, s := range stack {
			if s == "[" {
				return nil
			}
		}
		full := strings.Join(append(append([]string{}, stack...), unquote(key)), ".")
		if _, dup := conf[full]; dup {
			return fmt.Errorf("%s:%d: %s is set twice", path, n, full)
		}
		conf[full] = unquote(value)
		return nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := stripHOCONComment(strings.TrimSpace(sc.Text()))
		var m []string
		switch {
		case line == "":
		case line == "}" || line == "]" || line == "}," || line == "],":
			if len(stack) == 0 {
				return nil, fmt.Errorf("%s:%d: %q closes nothing", path, n, line)
			}
			stack = stack[:len(stack)-1]
		case line == "{" && inArray():
			stack = append(stack, "[")
		case hoconOpen.MatchString(line):
			stack = append(stack, unquote(hoconOpen.FindStringSubmatch(line)[1]))
		case hoconArray.MatchString(line):
			stack = append(stack, "[")
		case strings.HasPrefix(line, "include"):
			return nil, fmt.Errorf("%s:%d: includes are not followed", path, n)
		case hoconBlock.MatchString(line):
			m = hoconBlock.FindStringSubmatch(line)
			stack = append(stack, unquote(m[1]))
			err = set(n, m[2], m[3])
			stack = stack[:len(stack)-1]
			if err != nil {
				return nil, err
			}
		case hoconValue.MatchString(line):
			m = hoconValue.FindStringSubmatch(line)
			v := strings.TrimSuffix(m[2], ",")
			if !strings.HasPrefix(v, `"`) && strings.ContainsAny(v, "{[$") {
				return nil, fmt.Errorf("%s:%d: cannot read %q", path, n, line)
			}
			if err := set(n, m[1], v); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s:%d: cannot read %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("%s: %d blocks left open", path, len(stack))
	}
	return conf, nil
}

// stripHOCONComment cuts a # or // comment outside a quoted string.
func stripHOCONComment(line string) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '"':
			quoted = !quoted
		case !quoted && line[i] == '#', !quoted && strings.HasPrefix(line[i:], "//"):
			return strings.TrimSpace(line[:i])
		}
	}
	return line
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
		return u
	}
	return s
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// parseBytes reads an EMQX byte size: digits with B, KB, MB or GB (powers
// of 1024), or bare digits.
func parseBytes(s string) (int64, error) {
	units := map[string]int64{"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i == 0 {
		return 0, fmt.Errorf("not a byte size")
	}
	digits, unit := s, ""
	if i > 0 {
		digits, unit = s[:i], strings.ToUpper(s[i:])
	}
	mult, ok := units[unit]
	if !ok {
		keys := make([]string, 0, len(units))
		for k := range units {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return 0, fmt.Errorf("unit %q is not one of %v", unit, keys)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n * mult, err
}

// parseSeconds reads an EMQX duration (digits with s, m, h or d) in seconds.
func parseSeconds(s string) (int64, error) {
	units := map[byte]int64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400}
	if len(s) < 2 || units[s[len(s)-1]] == 0 {
		return 0, fmt.Errorf("not a duration with s, m, h or d")
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	return n * units[s[len(s)-1]], err
}
