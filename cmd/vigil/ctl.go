package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

type ctl struct {
	server string
	output string
	out    formatter // -f, -c, --max-width (ctllist.go)
	client *http.Client
}

func ctlCmd() *cobra.Command {
	c := &ctl{client: &http.Client{Timeout: 10 * time.Second}}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Talk to a running vigil serve or demo over its REST API",
	}
	def := os.Getenv("VIGIL_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.PersistentFlags().StringVar(&c.server, "server", def, "Vigil's API URL ($VIGIL_URL)")
	cmd.PersistentFlags().StringVarP(&c.output, "output", "o", "", "output: table, json or yaml (as -f)")
	c.addFormatFlags(cmd)

	status := &cobra.Command{Use: "status", Short: "Clusters with their health, hosts, open incidents", Args: cobra.NoArgs, RunE: c.status}
	incidents := &cobra.Command{Use: "incidents", Short: "Recent incidents with their steps", Args: cobra.NoArgs, RunE: c.incidents}
	var members []string
	var desired int
	var policy string
	var src clusterSource
	create := &cobra.Command{
		Use:   "create-cluster NAME --members ID,ID,... | --stack S | --server-group G | --metadata V [--desired N] [--policy P]",
		Short: "Protect a group of servers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0], "members": members, "policy": policy}
			if err := src.apply(body); err != nil {
				return err
			}
			if cmd.Flags().Changed("desired") {
				body["desired"] = desired
			}
			var out model.ClusterStatus
			if err := c.do(http.MethodPost, "/v1/clusters", body, &out); err != nil {
				return err
			}
			return c.print(cmd.OutOrStdout(), out, func(w io.Writer) {
				fmt.Fprintf(w, "cluster %s created: %d members, desired %d, policy %s, health %s\n", out.Name, len(out.Members), out.Desired, out.Policy, out.Health)
			})
		},
	}
	create.Flags().StringSliceVar(&members, "members", nil, "server IDs")
	create.Flags().IntVar(&desired, "desired", 0, "members that must be healthy (default: all)")
	create.Flags().StringVar(&policy, "policy", "default", "policy name")
	src.flags(create)
	del := &cobra.Command{
		Use: "delete-cluster NAME", Short: "Stop protecting a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do(http.MethodDelete, "/v1/clusters/"+args[0], nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s deleted\n", args[0])
			return nil
		},
	}
	trust := &cobra.Command{
		Use:   "trust-fence HOST",
		Short: "Trust a host's fence device again, after fixing its BMC or its entry",
		Long: "Vigil stops trusting a host's BMC when it contradicts the host (says off while the host reports,\n" +
			"shares its identity with another host's, or changed identity); the doubt outlives restarts.\n" +
			"Once the BMC or its fencing entry is fixed, this clears it. A BMC that still contradicts its host\n" +
			"is doubted again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do(http.MethodDelete, "/v1/hosts/"+url.PathEscape(args[0])+"/fence-doubt", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the fence device of host %s is trusted again\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(status, incidents, create, del, trust, c.hostCmd(), c.clusterCmd())
	c.addHostDrain(cmd)
	c.addListShow(cmd)
	return cmd
}

// do sends a request; an API error comes back as its message (and field).
func (c *ctl) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach Vigil at %s (is `vigil serve` or `vigil demo` running? set --server): %w", c.server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *ctl) print(w io.Writer, v any, table func(io.Writer)) error {
	return c.printRaw(w, v, table)
}

type statusView struct {
	Cloud     engine.CloudStatus    `json:"cloud"`
	Clusters  []model.ClusterStatus `json:"clusters"`
	Hosts     []engine.HostStatus   `json:"hosts"`
	Incidents []model.Incident      `json:"incidents"`
}

func (c *ctl) status(cmd *cobra.Command, _ []string) error {
	var v statusView
	if err := c.do(http.MethodGet, "/v1/cloud", nil, &v.Cloud); err != nil {
		return err
	}
	if err := c.do(http.MethodGet, "/v1/clusters", nil, &v.Clusters); err != nil {
		return err
	}
	if err := c.do(http.MethodGet, "/v1/hosts", nil, &v.Hosts); err != nil {
		return err
	}
	if err := c.do(http.MethodGet, "/v1/incidents?limit=10", nil, &v.Incidents); err != nil {
		return err
	}
	return c.print(cmd.OutOrStdout(), v, func(w io.Writer) {
		if v.Cloud.Reachable {
			fmt.Fprintf(w, "cloud\treachable\n")
		} else {
			fmt.Fprintf(w, "cloud\tUNREACHABLE since %s: %s\n", v.Cloud.Since.Format(time.RFC3339), v.Cloud.Error)
		}
		fmt.Fprintf(w, "\nCLUSTER\tHEALTH\tHEALTHY/DESIRED\tPOLICY\tREASON\n")
		for _, cl := range v.Clusters {
			fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", cl.Name, cl.Health, cl.Healthy, cl.Desired, cl.Policy, cl.Reason)
		}
		fmt.Fprintf(w, "\nHOST\tSEGMENT\tSERVICE\tVERDICT\tMAINTENANCE\n")
		for _, h := range v.Hosts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.Name, h.Segment, service(h.Host), h.Verdict.Host, maintenance(h))
		}
		incidentTable(w, v.Incidents)
	})
}

func service(h model.Host) string {
	s := string(h.Service)
	if h.ForcedDown {
		s += " (forced down)"
	}
	if h.Disabled {
		s += " (disabled)"
	}
	return s
}

func incidentTable(w io.Writer, incs []model.Incident) {
	fmt.Fprintf(w, "\nINCIDENT\tSUBJECT\tSTATE\tOPENED\tSTEPS\tREASON\n")
	for _, in := range incs {
		var steps []string
		for _, st := range in.Steps {
			a := string(st.Action)
			if st.Server != "" && in.Subject.Kind == model.KindHost {
				a += " " + st.Server
			}
			steps = append(steps, a+":"+string(st.State))
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Subject, in.State, in.Opened.Local().Format("15:04:05"), strings.Join(steps, ", "), in.Reason)
	}
}

func (c *ctl) incidents(cmd *cobra.Command, _ []string) error {
	var incs []model.Incident
	if err := c.do(http.MethodGet, "/v1/incidents?limit=50", nil, &incs); err != nil {
		return err
	}
	return c.print(cmd.OutOrStdout(), incs, func(w io.Writer) { incidentTable(w, incs) })
}
