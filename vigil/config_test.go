package vigil

import (
	"strings"
	"testing"
	"time"
)

// The cloud's service_down_time reaches the engine's detector; a wrong value is
// refused with the field's path, and an absent one keeps Nova's default.
func TestParseConfigServiceDownTime(t *testing.T) {
	cfg, err := ParseConfig([]byte("cloud: {service_down_time: 20s}\n"))
	if err != nil || cfg.ServiceDownTime != 20*time.Second {
		t.Fatalf("service_down_time 20s: %v, %v", cfg.ServiceDownTime, err)
	}
	if cfg, err := ParseConfig([]byte("limits: {max_concurrent: 5}\n")); err != nil || cfg.ServiceDownTime != 0 {
		t.Fatalf("absent: %v, %v (want 0: the engine applies Nova's default)", cfg.ServiceDownTime, err)
	}
	for _, bad := range []string{"cloud: {service_down_time: -5s}\n", "cloud: {service_down_time: 0s}\n", "cloud: {service_downtime: 5s}\n"} {
		_, err := ParseConfig([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "service_down") {
			t.Errorf("%q: %v, want an error naming the field", bad, err)
		}
	}
}

// An empty policy file is the defaults, not an error (yaml's EOF).
func TestEmptyPolicyFileIsTheDefaults(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil || cfg.Policies["default"].Name != "default" {
		t.Fatalf("empty file: %+v, %v", cfg, err)
	}
}

// Nova's disabled compute service counts as maintenance unless the file says not.
func TestConfigDisabledIsMaintenance(t *testing.T) {
	cfg, err := ParseConfig([]byte("cloud:\n  service_down_time: 20s\n"))
	if err != nil || cfg.DisabledNotMaintenance {
		t.Fatalf("default: DisabledNotMaintenance %v, err %v; want false (disabled is maintenance)", cfg.DisabledNotMaintenance, err)
	}
	cfg, err = ParseConfig([]byte("cloud:\n  disabled_is_maintenance: false\n"))
	if err != nil || !cfg.DisabledNotMaintenance {
		t.Fatalf("disabled_is_maintenance false: DisabledNotMaintenance %v, err %v; want true", cfg.DisabledNotMaintenance, err)
	}
	_, err = ParseConfig([]byte("cloud:\n  disabled_is_maintenance: maybe\n"))
	if err == nil || !strings.Contains(err.Error(), ":2: cloud.disabled_is_maintenance:") {
		t.Fatalf("a non-boolean: got %v, want an error at line 2 naming cloud.disabled_is_maintenance", err)
	}
}

// cloud.service_cloud names the clouds.yaml entry whose service token lets Cinder
// cut an attachment Nova still lists.
func TestConfigServiceCloud(t *testing.T) {
	cfg, err := ParseConfig([]byte("cloud:\n  service_cloud: vigil-dev-service\n"))
	if err != nil || cfg.ServiceCloud != "vigil-dev-service" {
		t.Fatalf("ServiceCloud %q, err %v; want vigil-dev-service", cfg.ServiceCloud, err)
	}
	_, err = ParseConfig([]byte("cloud:\n  service_cloud: [a, b]\n"))
	if err == nil || !strings.Contains(err.Error(), ":2: cloud.service_cloud:") {
		t.Fatalf("a list: got %v, want an error at line 2 naming cloud.service_cloud", err)
	}
}
