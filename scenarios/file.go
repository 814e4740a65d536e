package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// A scenario file (--scenario-file) is a user's own scenario: the run's
// shape, an optional verdict and an optional fault script, in YAML or JSON
// (JSON is YAML, so one parser reads both). examples/restart-under-load.yaml
// shows every field. Unknown fields are errors, so that a typo does not
// silently run the default.
//
// go.yaml.in/yaml/v3 is the YAML project's own continuation of
// gopkg.in/yaml.v3; it was already in the module graph.

// file is the document's shape. Pointers tell "absent" from zero, so that
// an absent threshold keeps the default.
type file struct {
	Name                string      `yaml:"name"`
	Summary             string      `yaml:"summary"`
	Instances           int         `yaml:"instances"`
	Duration            duration    `yaml:"duration"`
	Rate                float64     `yaml:"rate"`
	EventTypes          []string    `yaml:"event_types"`
	Publishers          int         `yaml:"publishers"`
	DedicatedPublishers bool        `yaml:"dedicated_publishers"`
	Thresholds          *thresholds `yaml:"thresholds"`
	Faults              []fault     `yaml:"faults"`
}

type thresholds struct {
	MinDelivery       *float64 `yaml:"min_delivery"`
	MaxErrors         *int64   `yaml:"max_errors"`
	MaxAvgLatency     *limit   `yaml:"max_avg_latency"`
	MaxP99Latency     *limit   `yaml:"max_p99_latency"`
	MaxDuplicates     *int64   `yaml:"max_duplicates"`
	MaxRecovery       *limit   `yaml:"max_recovery"`
	LossOnlyInOutages *bool    `yaml:"loss_only_in_outages"`
}

// thresholdKeys names each Thresholds field as a scenario file spells it,
// for Validate's errors.
var thresholdKeys = map[string]string{
	"MinDeliveryRate": "min_delivery", "MaxErrors": "max_errors", "MaxAvgLatency": "max_avg_latency",
	"MaxP99Latency": "max_p99_latency", "MaxDuplicates": "max_duplicates", "MaxRecovery": "max_recovery",
}

type fault struct {
	At                duration            `yaml:"at"`
	Action            harness.FaultAction `yaml:"action"`
	For               duration            `yaml:"for"`
	Instance          instance            `yaml:"instance"`
	Delay             duration            `yaml:"delay"`
	OutputBufferLimit string              `yaml:"output_buffer_limit"`
	ReadBuffer        int                 `yaml:"read_buffer"`
	Latency           duration            `yaml:"latency"`
	Jitter            duration            `yaml:"jitter"`
}

// duration reads "30s", "1m30s", "500ms" or a bare number of seconds, as
// the command line does. (yaml.v3 alone would read a bare 30 into a
// time.Duration as 30 nanoseconds.)
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q: %v", n.Line, n.Value, err)
	}
	*d = duration(v)
	return nil
}

// limit is a duration threshold: a duration, or -1 for no check.
type limit time.Duration

func (l *limit) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseLimit(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q: %v", n.Line, n.Value, err)
	}
	*l = limit(v)
	return nil
}

// ParseLimit reads a duration threshold: a duration as ParseDuration reads
// it, or "-1" for verdict.NoCheck, the one way to switch a check off. Any
// other negative or zero duration is an error: it would be a limit no run
// can meet, or look like "off" without being so.
func ParseLimit(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "-1" {
		return verdict.NoCheck, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a positive duration like 100ms, or -1 for no check")
	}
	if d <= 0 {
		return 0, fmt.Errorf("%v: want a positive duration, or -1 for no check", d)
	}
	return d, nil
}

// instance reads an instance number or "all".
type instance int

func (i *instance) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "all" {
		*i = harness.AllInstances
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: instance %q: want a number or all", n.Line, n.Value)
	}
	*i = instance(v)
	return nil
}

// ParseDuration accepts a Go duration ("30s", "1m30s", "500ms") or a bare
// number of seconds ("30", "0.5"); a number with anything after it ("10 s",
// "1e") is an error rather than half-parsed.
func ParseDuration(s string) (time.Duration, error) {
	// Digits, sign, point and exponent only: ParseFloat alone would also
	// take "inf", "NaN" and hexadecimal.
	numeric := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' && r != 'e' && r != 'E'
	}) < 0
	if secs, err := strconv.ParseFloat(s, 64); err == nil && numeric && math.Abs(secs) < 1e9 {
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a duration like 30s, 1m30s or 500ms, or a number of seconds")
	}
	return d, nil
}

// MaxFileSize bounds a scenario file: no scenario needs more, and a larger
// input (a wrong path, /dev/zero) must not fill the memory.
const MaxFileSize = 1 << 20

// Load reads a scenario file; its errors name the file and, where the
// parser knows it, the line.
func Load(path string) (Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return Scenario{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Scenario{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return Scenario{}, fmt.Errorf("%s: larger than %d KiB, the limit of a scenario file", path, MaxFileSize>>10)
	}
	sc, err := Parse(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("%s: %w", path, err)
	}
	if sc.Name == "" {
		sc.Name = path
	}
	return sc, nil
}

// Parse reads a scenario document, YAML or JSON.
func Parse(data []byte) (Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, errors.New("empty scenario file")
		}
		return Scenario{}, oneLine(err, data)
	}
	// A second document would be ignored silently by Decode: refuse it.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return Scenario{}, errors.New("more than one YAML document (a second '---'): one scenario per file")
	}
	sc := Scenario{Name: f.Name, Summary: f.Summary, Config: harness.Config{
		Instances: f.Instances, Duration: time.Duration(f.Duration), Rate: f.Rate,
		EventTypes: f.EventTypes, Publishers: f.Publishers, DedicatedPublishers: f.DedicatedPublishers,
	}}
	for _, ft := range f.Faults {
		sc.Config.Faults = append(sc.Config.Faults, harness.Fault{
			At: time.Duration(ft.At), Action: ft.Action, For: time.Duration(ft.For), Instance: int(ft.Instance),
			Delay: time.Duration(ft.Delay), OutputBufferLimit: ft.OutputBufferLimit, ReadBuffer: ft.ReadBuffer,
			Latency: time.Duration(ft.Latency), Jitter: time.Duration(ft.Jitter),
		})
	}
	if t := f.Thresholds; t != nil {
		th := verdict.DefaultThresholds()
		setIf(&th.MinDeliveryRate, t.MinDelivery)
		setIf(&th.MaxErrors, t.MaxErrors)
		setIf(&th.MaxDuplicates, t.MaxDuplicates)
		setIf(&th.LossOnlyInOutages, t.LossOnlyInOutages)
		for dst, src := range map[*time.Duration]*limit{&th.MaxAvgLatency: t.MaxAvgLatency,
			&th.MaxP99Latency: t.MaxP99Latency, &th.MaxRecovery: t.MaxRecovery} {
			if src != nil {
				*dst = time.Duration(*src)
			}
		}
		var te *verdict.ThresholdError
		if err := th.Validate(); errors.As(err, &te) {
			return Scenario{}, fmt.Errorf("thresholds: %s: %s, got %s", thresholdKeys[te.Field], te.Reason, te.Value)
		} else if err != nil {
			return Scenario{}, err
		}
		sc.Thresholds = &th
	}
	return sc, nil
}

// setIf copies *src into *dst when the file gave it.
func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// oneLine folds a multi-line YAML error ("yaml: unmarshal errors:\n  line
// 3: ...") into one line, as every redisload error is.
func oneLine(err error, data []byte) error {
	fields := strings.Fields(strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:", ""))
	msg := inFileTerms(strings.Join(fields, " "))
	// A value of the wrong kind: the decoder names the line, the file's
	// reader wants the field too.
	lines := strings.Split(string(data), "\n")
	return errors.New(lineRef.ReplaceAllStringFunc(msg, func(m string) string {
		sub := lineRef.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		if n < 1 || n > len(lines) {
			return m
		}
		key, _, ok := strings.Cut(strings.TrimLeft(strings.TrimSpace(lines[n-1]), "- "), ":")
		key = strings.Trim(strings.TrimSpace(key), `"{`)
		if !ok || key == "" || strings.ContainsAny(key, " ,") {
			return m
		}
		return fmt.Sprintf("line %s: %s: %s", sub[1], key, sub[2])
	}))
}

// lineRef is the decoder's "line N:" before a wrong value.
var lineRef = regexp.MustCompile(`line (\d+): ((?:"[^"]*"|a \w+) is not)`)

// The decoder's words for a mistake, in Go's terms.
var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type scenarios\.(\w+)`)
	wrongType    = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (\\S+)")
)

// goTypes says what a scenario file must hold where the decoder wanted a
// Go type.
var goTypes = map[string]string{"int": "a whole number", "int64": "a whole number", "float64": "a number",
	"bool": "true or false", "string": "a text", "[]string": "a list of texts", "[]scenarios.fault": "a list of faults",
	"scenarios.file": "a mapping of fields", "scenarios.thresholds": "a mapping of thresholds", "scenarios.fault": "a fault's mapping"}

// inFileTerms rewrites the decoder's message in the file's terms: the
// field a user misspelt and the ones the file knows, not a Go type
// ("field duraton not found in type scenarios.file"); the kind of value a
// field wants, not "into float64".
func inFileTerms(msg string) string {
	msg = unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		return fmt.Sprintf("unknown field %q (known: %s)", sub[1], strings.Join(knownFields(sub[2]), ", "))
	})
	return wrongType.ReplaceAllStringFunc(msg, func(m string) string {
		sub := wrongType.FindStringSubmatch(m)
		want, ok := goTypes[sub[3]]
		if !ok {
			want = "another kind of value"
		}
		if sub[2] == "" { // a list or a mapping: the decoder does not quote it
			kinds := map[string]string{"seq": "a list", "map": "a mapping"}
			what, ok := kinds[sub[1]]
			if !ok {
				what = "a " + sub[1]
			}
			return fmt.Sprintf("%s is not %s", what, want)
		}
		return fmt.Sprintf("%q is not %s", sub[2], want)
	})
}

// knownFields lists the keys of one of the file's mappings.
func knownFields(typeName string) []string {
	var t reflect.Type
	switch typeName {
	case "file":
		t = reflect.TypeOf(file{})
	case "thresholds":
		t = reflect.TypeOf(thresholds{})
	case "fault":
		t = reflect.TypeOf(fault{})
	default:
		return nil
	}
	var out []string
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}
