package main

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// hostCmd: `vigil ctl host maintenance on|off HOST` and `vigil ctl host return HOST`.
func (c *ctl) hostCmd() *cobra.Command {
	host := &cobra.Command{Use: "host", Short: "Operations on a compute host: maintenance, return"}
	var reason string
	maint := &cobra.Command{
		Use:   "maintenance on|off HOST [--reason TEXT]",
		Short: "Put a host in maintenance or take it out (journaled: it outlives restarts of Vigil)",
		Long: "A host in maintenance gets no failure verdict: Vigil neither fences nor evacuates it, and places\n" +
			"nothing on it. If it fails with protected servers on it, its incident escalates at once saying they\n" +
			"are not recovered. Nova's disabled compute service counts as maintenance too\n" +
			"(cloud.disabled_is_maintenance, default true).",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[0] {
			case "on":
				on = true
			case "off":
			default:
				return fmt.Errorf("want on or off, got %q", args[0])
			}
			var out engine.MaintenanceResult
			if err := c.do(http.MethodPost, "/v1/hosts/"+seg(args[1])+"/maintenance", map[string]any{"on": on, "reason": reason}, &out); err != nil {
				return err
			}
			return c.print(cmd.OutOrStdout(), out, func(w io.Writer) { fmt.Fprintln(w, out.Message) })
		},
	}
	maint.Flags().StringVar(&reason, "reason", "", "why (shown in host status and the journal)")
	ret := &cobra.Command{
		Use:   "return HOST",
		Short: "Undo Vigil's own force-down of a host once its servers were moved and it is healthy again",
		Long: "In order: (a) no protected server still placed on it and no incident on it open; (b) its BMC says\n" +
			"power on and its compute reports (heartbeats advancing while forced down); (c) force its service\n" +
			"up, retrying while Nova refuses ('done' evacuation records remain until the restarted compute\n" +
			"cleaned up); (d) a disabled service is said (Vigil never disables one); (e) an operator's\n" +
			"maintenance is said. Prints what was done and what is left; exits 1 when not returned.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out model.HostReturn
			saved := c.client
			c.client = &http.Client{Timeout: 5 * time.Minute} // it waits for Nova up to the engine's bound
			defer func() { c.client = saved }()
			if err := c.do(http.MethodPost, "/v1/hosts/"+seg(args[0])+"/return", nil, &out); err != nil {
				return err
			}
			if err := c.print(cmd.OutOrStdout(), out, func(w io.Writer) {
				for _, d := range out.Done {
					fmt.Fprintf(w, "done\t%s\n", d)
				}
				for _, l := range out.Left {
					fmt.Fprintf(w, "LEFT\t%s\n", l)
				}
				if out.Returned {
					fmt.Fprintf(w, "host %s returned\n", out.Host)
				}
			}); err != nil {
				return err
			}
			if !out.Returned {
				return fmt.Errorf("host %s not returned: see what is left", out.Host)
			}
			return nil
		},
	}
	host.AddCommand(maint, ret)
	return host
}

// maintenance is the host status's maintenance column: an operator's (with its
// reason), Nova's disabled service honoured as one, or nothing.
func maintenance(h engine.HostStatus) string {
	switch {
	case h.Operator != nil && h.Operator.Reason != "":
		return "yes: " + h.Operator.Reason
	case h.Operator != nil:
		return "yes"
	case h.Maintenance:
		return "yes (" + h.Verdict.Rule + ")"
	}
	return ""
}
