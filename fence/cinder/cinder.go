// Package cinder is the storage half of the fabric fence: a server's Cinder
// attachments whose connector host is the old host are deleted from Cinder's side
// before its evacuation, so a copy left running there can no longer write. Cinder
// refuses that (409 ConflictNovaUsingAttachment) while Nova still lists the
// attachment, unless the request carries X-Service-Token of a user with the
// service role: Volumes needs such a token source, and says so when it has none.
// Nova's evacuation attaches the volume on the new host itself.
package cinder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
)

// attachmentsMicroversion: the attachments API (3.27+).
const attachmentsMicroversion = "3.27"

// Volumes reads and cuts servers' volume attachments.
type Volumes struct {
	client *gophercloud.ServiceClient
	// service gives a token of a user with the service role; nil: none configured.
	service *gophercloud.ProviderClient
	// hint says how to configure one, for the error shown when there is none.
	hint string
}

// New returns Volumes over a block-storage (v3) client; service is the provider of
// a user with the service role (nil: none), hint how to configure one.
func New(client *gophercloud.ServiceClient, service *gophercloud.ProviderClient, hint string) *Volumes {
	return &Volumes{client: client, service: service, hint: hint}
}

type volume struct {
	ID          string `json:"id"`
	Attachments []struct {
		ID           string `json:"id"`
		AttachmentID string `json:"attachment_id"`
		ServerID     string `json:"server_id"`
		HostName     string `json:"host_name"`
	} `json:"attachments"`
}

// Attachments lists the server's attachments with their connector host.
func (v *Volumes) Attachments(ctx context.Context, server string) ([]cloud.Attachment, error) {
	var body struct {
		Volumes []volume `json:"volumes"`
	}
	// Cinder filters volumes by nothing a server owns: all volumes, in one call
	// (the fence of one server, not a poll).
	u := v.client.ServiceURL("volumes", "detail") + "?all_tenants=1"
	if _, err := v.client.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, classify(fmt.Errorf("list the volumes of server %s (Cinder): %w", server, err))
	}
	var out []cloud.Attachment
	for _, vol := range body.Volumes {
		for _, a := range vol.Attachments {
			if a.ServerID != server {
				continue
			}
			out = append(out, cloud.Attachment{ID: a.AttachmentID, Volume: vol.ID, Host: a.HostName})
		}
	}
	return out, nil
}

// Cut deletes the server's attachments to host and returns their volumes. Those
// to other hosts are left alone.
func (v *Volumes) Cut(ctx context.Context, server, host string) ([]string, error) {
	atts, err := v.Attachments(ctx, server)
	if err != nil {
		return nil, err
	}
	var vols []string
	for _, a := range atts {
		if a.Host != host {
			continue
		}
		if v.service == nil {
			return vols, cloud.Terminal(fmt.Errorf("Cinder refuses to delete attachment %s of volume %s (server %s, host %s) without a service token: configure %s",
				a.ID, a.Volume, server, host, v.hint))
		}
		token := v.service.Token()
		if token == "" {
			return vols, fmt.Errorf("%w: no service token from the service user (authentication pending)", cloud.ErrUnavailable)
		}
		_, err := v.client.Delete(ctx, v.client.ServiceURL("attachments", url.PathEscape(a.ID)), &gophercloud.RequestOpts{
			OkCodes: []int{200, 202, 204},
			MoreHeaders: map[string]string{"X-Service-Token": token,
				"OpenStack-API-Version": "volume " + attachmentsMicroversion}})
		var code gophercloud.ErrUnexpectedResponseCode
		switch {
		case errors.As(err, &code) && code.Actual == http.StatusNotFound:
			// gone already (a resumed step, or Nova's own clean-up)
		case errors.As(err, &code) && code.Actual == http.StatusConflict:
			return vols, cloud.Terminal(fmt.Errorf("Cinder refuses to delete attachment %s of volume %s (server %s, host %s) although a service token was sent (is the user of %s given the service role, and listed in Cinder's service_token_roles?): %w",
				a.ID, a.Volume, server, host, v.hint, err))
		case err != nil:
			return vols, classify(fmt.Errorf("delete attachment %s of volume %s (Cinder): %w", a.ID, a.Volume, err))
		}
		vols = append(vols, a.Volume)
	}
	return vols, nil
}

func classify(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &code) && code.Actual >= 500:
		return fmt.Errorf("%w: %w", cloud.ErrUnavailable, err)
	case errors.As(err, &code) && (code.Actual == http.StatusForbidden || code.Actual == http.StatusUnauthorized || code.Actual == http.StatusNotFound):
		return cloud.Terminal(err)
	case errors.As(err, &code):
		return err
	}
	return fmt.Errorf("%w: %w", cloud.ErrUnavailable, err)
}
