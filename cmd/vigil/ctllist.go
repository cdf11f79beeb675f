package main

// ctllist.go: the openstack client's verbs on Vigil's objects —
// `vigil ctl cluster|host|server|incident list` and `... show NAME|ID` — with
// -f table|json|yaml|value and -c COLUMN, and shell completion of cluster and host
// names (asked of the API).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// column is one named column of a kind of object and how to read it.
type column[T any] struct {
	name string
	get  func(T) any
}

// kind is how one kind of object is listed and shown: its columns, and those a
// list shows when -c is not given (show prints them all).
type kind[T any] struct {
	columns []column[T]
	brief   []string
}

func (k kind[T]) listing(items []T, all bool) listing {
	var l listing
	for _, c := range k.columns {
		l.columns = append(l.columns, c.name)
	}
	for _, it := range items {
		row := make([]any, len(k.columns))
		for i, c := range k.columns {
			row[i] = c.get(it)
		}
		l.rows = append(l.rows, row)
	}
	if all {
		return l
	}
	brief, _ := l.only(k.brief) // the brief columns are among the columns (a test checks)
	return brief
}

var clusterKind = kind[model.ClusterStatus]{
	columns: []column[model.ClusterStatus]{
		{"name", func(c model.ClusterStatus) any { return c.Name }},
		{"health", func(c model.ClusterStatus) any { return string(c.Health) }},
		{"healthy", func(c model.ClusterStatus) any { return c.Healthy }},
		{"desired", func(c model.ClusterStatus) any { return c.Desired }},
		{"policy", func(c model.ClusterStatus) any { return c.Policy }},
		{"priority", func(c model.ClusterStatus) any { return c.Priority }},
		{"source", func(c model.ClusterStatus) any { return sourceOf(c.Source) }},
		{"members", func(c model.ClusterStatus) any { return orEmpty(c.Members) }},
		{"reason", func(c model.ClusterStatus) any { return c.Reason }},
	},
	brief: []string{"name", "health", "healthy", "desired", "policy", "source", "reason"},
}

func sourceOf(s *model.ClusterSource) string {
	if s == nil {
		return "members"
	}
	return s.Kind + ":" + s.Ref
}

var hostKind = kind[engine.HostStatus]{
	columns: []column[engine.HostStatus]{
		{"name", func(h engine.HostStatus) any { return h.Name }},
		{"segment", func(h engine.HostStatus) any { return h.Segment }},
		{"service", func(h engine.HostStatus) any { return service(h.Host) }},
		{"power", func(h engine.HostStatus) any { return string(h.Power) }},
		{"verdict", func(h engine.HostStatus) any { return h.Verdict.Host }},
		{"rule", func(h engine.HostStatus) any { return h.Verdict.Rule }},
		{"maintenance", func(h engine.HostStatus) any { return maintenance(h) }},
		{"fence_doubt", func(h engine.HostStatus) any { return h.FenceDoubt }},
		{"capacity", func(h engine.HostStatus) any { return h.Capacity }},
		{"last_seen_up", func(h engine.HostStatus) any { return h.LastSeenUp }},
		{"evidence", func(h engine.HostStatus) any { return orEmpty(h.Verdict.Evidence) }},
	},
	brief: []string{"name", "segment", "service", "verdict", "maintenance", "fence_doubt"},
}

var serverKind = kind[engine.ServerStatus]{
	columns: []column[engine.ServerStatus]{
		{"id", func(s engine.ServerStatus) any { return s.ID }},
		{"name", func(s engine.ServerStatus) any { return s.Name }},
		{"host", func(s engine.ServerStatus) any { return s.Host }},
		{"status", func(s engine.ServerStatus) any { return s.Status }},
		{"task_state", func(s engine.ServerStatus) any { return s.TaskState }},
		{"power_intent", func(s engine.ServerStatus) any { return string(s.Intent) }},
		{"verdict", func(s engine.ServerStatus) any { return s.Verdict.Server }},
		{"fault", func(s engine.ServerStatus) any { return s.Verdict.Fault }},
		{"rule", func(s engine.ServerStatus) any { return s.Verdict.Rule }},
		{"updated", func(s engine.ServerStatus) any { return s.Updated }},
		{"evidence", func(s engine.ServerStatus) any { return orEmpty(s.Verdict.Evidence) }},
	},
	brief: []string{"id", "name", "host", "status", "verdict", "fault"},
}

var incidentKind = kind[model.Incident]{
	columns: []column[model.Incident]{
		{"id", func(in model.Incident) any { return in.ID }},
		{"subject", func(in model.Incident) any { return in.Subject.String() }},
		{"cluster", func(in model.Incident) any { return in.Cluster }},
		{"policy", func(in model.Incident) any { return in.Policy }},
		{"state", func(in model.Incident) any { return string(in.State) }},
		{"rule", func(in model.Incident) any { return in.Rule }},
		{"fault", func(in model.Incident) any { return in.Fault }},
		{"opened", func(in model.Incident) any { return in.Opened }},
		{"updated", func(in model.Incident) any { return in.Updated }},
		{"closed", func(in model.Incident) any { return in.Closed }},
		{"steps", func(in model.Incident) any { return stepList(orEmpty(in.Steps)) }},
		{"reason", func(in model.Incident) any { return in.Reason }},
		{"evidence", func(in model.Incident) any { return orEmpty(in.Evidence) }},
	},
	brief: []string{"id", "subject", "state", "opened", "steps", "reason"},
}

// stepList is an incident's steps: whole in JSON and YAML, one line each in a table.
type stepList []model.Step

func (s stepList) String() string {
	var lines []string
	for _, st := range s {
		line := fmt.Sprintf("%d. %s", st.Seq, st.Action)
		if st.Server != "" {
			line += " " + st.Server
		} else if st.Host != "" {
			line += " " + st.Host
		}
		line += ": " + string(st.State)
		if st.Error != "" {
			line += " (" + st.Error + ")"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// orEmpty keeps a missing list a list ([] rather than null in JSON).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// addFormatFlags puts -f, -c and --max-width on ctl and all its commands.
func (c *ctl) addFormatFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVarP(&c.out.format, "format", "f", "table", "output format: "+strings.Join(formats, ", ")+" (-o/--output is the same)")
	f.StringArrayVarP(&c.out.columns, "column", "c", nil, "print only this column (repeat for several; list and show commands)")
	f.IntVar(&c.out.width, "max-width", 0, "table width (default: the terminal's, or 100 when not a terminal)")
}

// formatter resolves -f against the older -o (the one not left at table wins) and
// checks it.
func (c *ctl) formatter() (formatter, error) {
	f := c.out
	if f.format == "table" && c.output != "" {
		f.format = c.output
	}
	return f, checkFormat(f.format)
}

// addListShow adds list and show to the cluster, host, server and incident groups,
// and completion of names to the commands that take a cluster or a host.
func (c *ctl) addListShow(ctlRoot *cobra.Command) {
	clusters := group(ctlRoot, "cluster", "Clusters: list, show, edit members")
	clusters.AddCommand(
		listCmd(c, "clusters", clusterKind, func() ([]model.ClusterStatus, error) {
			var out []model.ClusterStatus
			return out, c.do(http.MethodGet, "/v1/clusters", nil, &out)
		}),
		showCmd(c, "NAME", "a cluster", clusterKind, c.completeClusters, func(name string) (model.ClusterStatus, error) {
			var out model.ClusterStatus
			return out, c.do(http.MethodGet, "/v1/clusters/"+url.PathEscape(name), nil, &out)
		}))
	hosts := group(ctlRoot, "host", "Compute hosts: list, show, maintenance, return, drain")
	hosts.AddCommand(
		listCmd(c, "hosts", hostKind, c.hosts),
		showCmd(c, "NAME", "a host", hostKind, c.completeHosts, func(name string) (engine.HostStatus, error) {
			return findOne(c.hosts, "host", name, func(h engine.HostStatus) bool { return h.Name == name })
		}))
	servers := group(ctlRoot, "server", "Servers Vigil sees, with its verdict on each")
	servers.AddCommand(
		listCmd(c, "servers", serverKind, c.servers),
		showCmd(c, "ID|NAME", "a server", serverKind, nil, func(ref string) (engine.ServerStatus, error) {
			return findOne(c.servers, "server", ref, func(s engine.ServerStatus) bool { return s.ID == ref || s.Name == ref })
		}))
	var limit int
	incList := listCmd(c, "incidents", incidentKind, func() ([]model.Incident, error) {
		var out []model.Incident
		return out, c.do(http.MethodGet, "/v1/incidents?limit="+strconv.Itoa(limit), nil, &out)
	})
	incList.Flags().IntVar(&limit, "limit", 50, "the most recent N incidents")
	incidents := group(ctlRoot, "incident", "Incidents: list, show one with its steps and evidence")
	incidents.AddCommand(incList,
		showCmd(c, "ID", "an incident", incidentKind, nil, func(id string) (model.Incident, error) {
			if _, err := strconv.ParseInt(id, 10, 64); err != nil {
				return model.Incident{}, fmt.Errorf("incident ID: want a number, got %q", id)
			}
			var out model.Incident
			return out, c.do(http.MethodGet, "/v1/incidents/"+id, nil, &out)
		}))
	c.completeFirstArg(ctlRoot, c.completeClusters, "delete-cluster", "cluster add", "cluster remove")
	c.completeFirstArg(ctlRoot, c.completeHosts, "trust-fence", "host drain", "host return")
}

// group returns the named group under ctl, made if no one made it yet.
func group(ctlRoot *cobra.Command, name, short string) *cobra.Command {
	for _, sub := range ctlRoot.Commands() {
		if sub.Name() == name {
			sub.Short = short // it says what the group holds now
			return sub
		}
	}
	g := &cobra.Command{Use: name, Short: short}
	ctlRoot.AddCommand(g)
	return g
}

func listCmd[T any](c *ctl, plural string, k kind[T], fetch func() ([]T, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List " + plural + " (-c COLUMN to choose the columns: " + strings.Join(names(k), ", ") + ")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := c.formatter()
			if err != nil {
				return err
			}
			items, err := fetch()
			if err != nil {
				return err
			}
			return f.list(cmd.OutOrStdout(), k.listing(items, len(f.columns) > 0))
		},
	}
}

func showCmd[T any](c *ctl, arg, what string, k kind[T], complete cobra.CompletionFunc, fetch func(string) (T, error)) *cobra.Command {
	return &cobra.Command{
		Use:               "show " + arg,
		Short:             "Show " + what + ", every column (-c COLUMN to choose: " + strings.Join(names(k), ", ") + ")",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := c.formatter()
			if err != nil {
				return err
			}
			it, err := fetch(args[0])
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), k.listing([]T{it}, true))
		},
	}
}

func names[T any](k kind[T]) []string {
	var out []string
	for _, c := range k.columns {
		out = append(out, c.name)
	}
	return out
}

func (c *ctl) hosts() ([]engine.HostStatus, error) {
	var out []engine.HostStatus
	return out, c.do(http.MethodGet, "/v1/hosts", nil, &out)
}

func (c *ctl) servers() ([]engine.ServerStatus, error) {
	var out []engine.ServerStatus
	return out, c.do(http.MethodGet, "/v1/servers", nil, &out)
}

// findOne picks the one item of a list that matches: the API has no route for
// one host or one server, so show reads the list.
func findOne[T any](fetch func() ([]T, error), what, ref string, match func(T) bool) (T, error) {
	var zero T
	items, err := fetch()
	if err != nil {
		return zero, err
	}
	var found []T
	for _, it := range items {
		if match(it) {
			found = append(found, it)
		}
	}
	switch len(found) {
	case 0:
		return zero, fmt.Errorf("no %s %q: see `vigil ctl %s list`", what, ref, what)
	case 1:
		return found[0], nil
	}
	return zero, fmt.Errorf("%d %ss match %q: give the ID", len(found), what, ref)
}

// completeClusters offers the API's cluster names for the first argument.
func (c *ctl) completeClusters(_ *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var cls []model.ClusterStatus
	if err := c.do(http.MethodGet, "/v1/clusters", nil, &cls); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, cl := range cls {
		if strings.HasPrefix(cl.Name, prefix) {
			out = append(out, cobra.CompletionWithDesc(cl.Name, string(cl.Health)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeHosts offers the API's host names for the first argument.
func (c *ctl) completeHosts(_ *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	hosts, err := c.hosts()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, h := range hosts {
		if strings.HasPrefix(h.Name, prefix) {
			out = append(out, cobra.CompletionWithDesc(h.Name, h.Verdict.Host))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeFirstArg gives completion to existing commands (named by their path
// under ctl) that have none yet.
func (c *ctl) completeFirstArg(ctlRoot *cobra.Command, fn cobra.CompletionFunc, paths ...string) {
	for _, p := range paths {
		sub, _, err := ctlRoot.Find(strings.Fields(p))
		if err == nil && sub != ctlRoot && sub.ValidArgsFunction == nil && sub.ValidArgs == nil {
			sub.ValidArgsFunction = fn
		}
	}
}

// printRaw prints an API answer that is not a list or one object of a kind (status,
// the result of a change): as JSON, YAML, or the command's own table.
func (c *ctl) printRaw(w io.Writer, v any, table func(io.Writer)) error {
	f, err := c.formatter()
	if err != nil {
		return err
	}
	if len(f.columns) > 0 {
		return fmt.Errorf("-c: only list and show commands have columns")
	}
	switch f.format {
	case "json":
		return writeJSON(w, v)
	case "yaml":
		return writeYAML(w, yamlOfJSON(v))
	case "value":
		return fmt.Errorf("-f value: only list and show commands print values; use table, json or yaml")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// yamlOfJSON is v as YAML with the keys in the order of its JSON (YAML reads JSON;
// the styles are reset so it prints as block YAML, not JSON).
func yamlOfJSON(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return v
	}
	var plain func(n *yaml.Node)
	plain = func(n *yaml.Node) {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" || !strings.ContainsAny(n.Value, "\n") {
			n.Style = 0
		}
		for _, sub := range n.Content {
			plain(sub)
		}
	}
	plain(&doc)
	return &doc
}
