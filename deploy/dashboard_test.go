package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"go.yaml.in/yaml/v3"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/live"
)

// dashboard is the part of Grafana's dashboard model the dashboard uses,
// decoded strictly: a misspelt field fails here, not in Grafana.
type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Editable      bool     `json:"editable"`
	Refresh       string   `json:"refresh"`
	Tags          []string `json:"tags"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
			Label string `json:"label"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Datasource  datasource `json:"datasource"`
	GridPos     struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	Targets []struct {
		RefID        string     `json:"refId"`
		Expr         string     `json:"expr"`
		LegendFormat string     `json:"legendFormat"`
		Datasource   datasource `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []any `json:"overrides"`
	} `json:"fieldConfig"`
	Options map[string]any `json:"options"`
}

// readDashboard decodes the dashboard strictly and checks what Grafana
// needs of it: a uid and title, panels of known types with unique ids on
// its 24-column grid, every query a Prometheus one through the
// dashboard's data-source variable.
func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/dashboards/redisload.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || len(d.Panels) == 0 {
		t.Fatalf("dashboard %q (%q): schema %d, %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Fatalf("templating %+v: want one Prometheus data-source variable", d.Templating.List)
	}
	ds := datasource{Type: "prometheus", UID: "${" + d.Templating.List[0].Name + "}"}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		g := p.GridPos
		if ids[p.ID] || p.ID <= 0 || p.Title == "" || !slices.Contains([]string{"timeseries", "stat"}, p.Type) ||
			g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || p.Datasource != ds || len(p.Targets) == 0 {
			t.Errorf("panel %+v", p)
		}
		ids[p.ID] = true
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] || q.Datasource != ds {
				t.Errorf("panel %q: query %+v", p.Title, q)
			}
			refs[q.RefID] = true
		}
	}
	return d
}

var (
	metricName = regexp.MustCompile(`redisload_[a-z_]+`)
	byLabels   = regexp.MustCompile(`by \(([a-z_, ]+)\)`)
	legendVar  = regexp.MustCompile(`\{\{([a-z_]+)\}\}`)
)

// The dashboard's every query asks for a metric a real run serves, with
// the labels it groups and names its series by: scraped from a run's
// exporter (the handler --metrics-addr serves) once the run has drained,
// when every metric, the end's counts too, is there.
func TestDashboardQueriesARealRun(t *testing.T) {
	d := readDashboard(t)
	srv := redistest.Start(t)
	cfg := harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 200, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	exp := live.NewExporter(cfg, map[string]string{"version": "test"})
	cfg.Progress = exp.Observe
	ts := httptest.NewServer(exp.Handler())
	defer ts.Close()
	exp.Phase(live.PhasePublishing)
	res, err := harness.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	exp.Finish(res)
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{} // metric → its label names
	for name, f := range fams {
		labels[name] = map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				labels[name][l.GetName()] = true
			}
		}
		if f.GetType().String() == "HISTOGRAM" {
			labels[name]["le"] = true
		}
	}
	queried := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			var want []string
			for _, m := range byLabels.FindAllStringSubmatch(q.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					want = append(want, strings.TrimSpace(l))
				}
			}
			for _, m := range legendVar.FindAllStringSubmatch(q.LegendFormat, -1) {
				want = append(want, m[1])
			}
			for _, name := range metricName.FindAllString(q.Expr, -1) {
				base := strings.TrimSuffix(name, "_bucket")
				have, ok := labels[base]
				if !ok {
					t.Errorf("panel %q: %s is not among the run's metrics", p.Title, name)
					continue
				}
				for _, l := range want {
					if !have[l] {
						t.Errorf("panel %q: %s has no label %q", p.Title, base, l)
					}
				}
				queried++
			}
		}
	}
	if queried < 14 {
		t.Errorf("%d metric references checked", queried)
	}
}

// The provisioning files point Grafana at the dashboard and at the
// Prometheus the Compose file runs, which scrapes the coordinator's
// --metrics-addr.
func TestDashboardProvisioned(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string `yaml:"name"`
			Type      string `yaml:"type"`
			UID       string `yaml:"uid"`
			Access    string `yaml:"access"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data sources %+v", ds)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "grafana/provisioning/dashboards/redisload.yaml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("providers %+v", prov)
	}
	var prom struct {
		Global        map[string]string `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "prometheus.yml", &prom)
	if len(prom.ScrapeConfigs) != 1 || len(prom.ScrapeConfigs[0].StaticConfigs) != 1 ||
		!slices.Equal(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"coordinator:9464"}) {
		t.Errorf("prometheus %+v", prom)
	}
	var c struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	decodeYAML(t, "compose.yaml", &c)
	for _, s := range []string{"prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("compose has no %s service", s)
		}
	}
}

// decodeYAML reads a file of this directory strictly: a field the struct
// does not know is an error.
func decodeYAML(t *testing.T, name string, into any) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
