package istio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The manifests under test.
const (
	meshFile    = "mesh-config.yaml"
	policyFile  = "authorization-policy.yaml"
	kubeFile    = "gatehouse.yaml"
	secretFile  = "secret-example.yaml"
	namespace   = "gatehouse"
	provider    = "gatehouse"
	secretName  = "gatehouse-admin-key"
	adminKeyKey = "admin.key"
)

var strict = protojson.UnmarshalOptions{DiscardUnknown: false}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeMesh decodes the istiod Helm values fragment: exactly one top-level key, meshConfig, holding
// a MeshConfig (unknown fields rejected, as istiod does).
func decodeMesh(data []byte) (*meshv1alpha1.MeshConfig, error) {
	var top struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	if err := unmarshalStrict(data, &top); err != nil {
		return nil, err
	}
	if len(top.MeshConfig) == 0 {
		return nil, errors.New("no meshConfig")
	}
	mc := &meshv1alpha1.MeshConfig{}
	if err := strict.Unmarshal(top.MeshConfig, mc); err != nil {
		return nil, fmt.Errorf("meshConfig: %w", err)
	}
	return mc, nil
}

// istioResource is a Kubernetes object whose spec is an Istio proto.
type istioResource struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            json.RawMessage   `json:"spec"`
}

// decodePolicy decodes an AuthorizationPolicy object: the envelope strictly with the Kubernetes
// types, the spec strictly with the Istio proto.
func decodePolicy(data []byte) (*istioResource, *securityv1beta1.AuthorizationPolicy, error) {
	var r istioResource
	if err := unmarshalStrict(data, &r); err != nil {
		return nil, nil, err
	}
	switch {
	case r.APIVersion != "security.istio.io/v1" && r.APIVersion != "security.istio.io/v1beta1":
		return nil, nil, fmt.Errorf("apiVersion %q is not security.istio.io/v1", r.APIVersion)
	case r.Kind != "AuthorizationPolicy":
		return nil, nil, fmt.Errorf("kind %q is not AuthorizationPolicy", r.Kind)
	case r.Metadata.Name == "" || r.Metadata.Namespace == "":
		return nil, nil, errors.New("metadata.name and metadata.namespace are required")
	case len(r.Spec) == 0:
		return nil, nil, errors.New("no spec")
	}
	ap := &securityv1beta1.AuthorizationPolicy{}
	if err := strict.Unmarshal(r.Spec, ap); err != nil {
		return nil, nil, fmt.Errorf("spec: %w", err)
	}
	return &r, ap, nil
}

// unmarshalStrict is sigs.k8s.io/yaml's UnmarshalStrict (unknown fields and duplicate keys are
// errors) plus the case-sensitive field matching the API server applies (sigs.k8s.io/json):
// encoding/json alone would accept "stringdata" for "stringData", which kubectl, Helm and the API
// server would not.
func unmarshalStrict(data []byte, v any) error {
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		return err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// splitDocs splits a multi-document YAML stream on "---" lines and drops documents that hold only
// comments or whitespace.
func splitDocs(data []byte) ([][]byte, error) {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		// What follows "---" on its line (nothing, or a comment) parses as part of the document.
		j, err := yaml.YAMLToJSON(d)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(j)); s == "null" || s == "" {
			continue
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// kubeObjects holds the decoded Kubernetes documents by kind.
type kubeObjects struct {
	namespaces      []*corev1.Namespace
	serviceAccounts []*corev1.ServiceAccount
	pvcs            []*corev1.PersistentVolumeClaim
	services        []*corev1.Service
	secrets         []*corev1.Secret
	deployments     []*appsv1.Deployment
}

// decodeKube decodes every document of data into the k8s.io/api type its kind names, strictly.
func decodeKube(data []byte, into *kubeObjects) error {
	docs, err := splitDocs(data)
	if err != nil {
		return err
	}
	for i, d := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d, &tm); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		wantAPI := "v1"
		switch tm.Kind {
		case "Namespace":
			o := &corev1.Namespace{}
			into.namespaces, obj = append(into.namespaces, o), o
		case "ServiceAccount":
			o := &corev1.ServiceAccount{}
			into.serviceAccounts, obj = append(into.serviceAccounts, o), o
		case "PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			into.pvcs, obj = append(into.pvcs, o), o
		case "Service":
			o := &corev1.Service{}
			into.services, obj = append(into.services, o), o
		case "Secret":
			o := &corev1.Secret{}
			into.secrets, obj = append(into.secrets, o), o
		case "Deployment":
			o := &appsv1.Deployment{}
			into.deployments, obj = append(into.deployments, o), o
			wantAPI = "apps/v1"
		default:
			return fmt.Errorf("document %d: kind %q is not one this test knows", i, tm.Kind)
		}
		if tm.APIVersion != wantAPI {
			return fmt.Errorf("document %d: %s apiVersion %q, want %q", i, tm.Kind, tm.APIVersion, wantAPI)
		}
		if err := unmarshalStrict(d, obj); err != nil {
			return fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
	}
	return nil
}

// manifests are all files decoded together, so facts can cross-check them.
type manifests struct {
	mesh   *meshv1alpha1.MeshConfig
	policy *istioResource
	ap     *securityv1beta1.AuthorizationPolicy
	kube   kubeObjects
}

func decodeAll(files map[string][]byte) (*manifests, error) {
	m := &manifests{}
	var err error
	if m.mesh, err = decodeMesh(files[meshFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", meshFile, err)
	}
	if m.policy, m.ap, err = decodePolicy(files[policyFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", policyFile, err)
	}
	for _, f := range []string{kubeFile, secretFile} {
		if err := decodeKube(files[f], &m.kube); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return m, nil
}

func readAll(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range []string{meshFile, policyFile, kubeFile, secretFile} {
		files[f] = readFile(t, f)
	}
	return files
}

func TestManifestsDecodeAndHold(t *testing.T) {
	m, err := decodeAll(readAll(t))
	if err != nil {
		t.Fatal(err)
	}
	k := m.kube
	if len(k.namespaces) != 1 || len(k.serviceAccounts) != 1 || len(k.pvcs) != 1 ||
		len(k.services) != 1 || len(k.secrets) != 1 || len(k.deployments) != 1 {
		t.Fatalf("want one of each kind, got ns=%d sa=%d pvc=%d svc=%d secret=%d deploy=%d",
			len(k.namespaces), len(k.serviceAccounts), len(k.pvcs), len(k.services), len(k.secrets), len(k.deployments))
	}
	for _, p := range facts(m) {
		t.Error(p)
	}
}

// facts checks what the docs promise about the manifests, across files.
func facts(m *manifests) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	k := m.kube
	if len(k.services) == 0 || len(k.deployments) == 0 || len(k.pvcs) == 0 || len(k.secrets) == 0 || len(k.namespaces) == 0 {
		return []string{"missing Service, Deployment, PersistentVolumeClaim, Secret or Namespace"}
	}
	svc, dep, pvc, sec := k.services[0], k.deployments[0], k.pvcs[0], k.secrets[0]

	// Names and namespaces.
	if k.namespaces[0].Name != namespace {
		bad("Namespace is %q, want %q", k.namespaces[0].Name, namespace)
	}
	for _, o := range []metav1.Object{svc, dep, pvc, sec, k.serviceAccounts[0]} {
		if o.GetNamespace() != namespace {
			bad("%s is in namespace %q, want %q", o.GetName(), o.GetNamespace(), namespace)
		}
		if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
			bad("name %q: %v", o.GetName(), errs)
		}
	}

	// Mesh provider -> Service.
	var ext *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	for _, p := range m.mesh.GetExtensionProviders() {
		if p.GetName() == provider {
			ext = p.GetEnvoyExtAuthzGrpc()
		}
	}
	svcFQDN := svc.Name + "." + svc.Namespace + ".svc.cluster.local"
	svcPort := func(name string) int32 {
		for _, p := range svc.Spec.Ports {
			if p.Name == name {
				return p.Port
			}
		}
		return 0
	}
	if ext == nil {
		bad("meshConfig has no envoyExtAuthzGrpc provider named %q", provider)
	} else {
		if ext.GetService() != svcFQDN {
			bad("provider service %q, want the Service %q", ext.GetService(), svcFQDN)
		}
		if int32(ext.GetPort()) != svcPort("grpc-authz") || ext.GetPort() != 9001 {
			bad("provider port %d, want the Service's grpc-authz port 9001", ext.GetPort())
		}
		if d := ext.GetTimeout().AsDuration(); d != 250*time.Millisecond {
			bad("provider timeout %v, want 250ms (Istio's default is 600s)", d)
		}
		if ext.GetFailOpen() {
			bad("provider failOpen must be false (fail closed)")
		}
		if ext.GetStatusOnError() != "503" {
			bad("provider statusOnError %q, want 503", ext.GetStatusOnError())
		}
	}
	if n := m.mesh.GetPathNormalization().GetNormalization(); n != meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES {
		bad("pathNormalization %v, want MERGE_SLASHES (same as envoy.yaml)", n)
	}

	// AuthorizationPolicy.
	if m.ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		bad("AuthorizationPolicy action %v, want CUSTOM", m.ap.GetAction())
	}
	if m.ap.GetProvider().GetName() != provider {
		bad("AuthorizationPolicy provider %q, want %q (the meshConfig provider)", m.ap.GetProvider().GetName(), provider)
	}
	if len(m.ap.GetSelector().GetMatchLabels()) == 0 {
		bad("AuthorizationPolicy has no selector: it would apply to the whole namespace")
	}
	healthzExempt := false
	for _, r := range m.ap.GetRules() {
		for _, to := range r.GetTo() {
			healthzExempt = healthzExempt || slices.Contains(to.GetOperation().GetNotPaths(), "/healthz")
		}
	}
	if len(m.ap.GetRules()) == 0 || !healthzExempt {
		bad("AuthorizationPolicy must have rules exempting /healthz (notPaths)")
	}

	// Deployment: one writer.
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		bad("Deployment replicas must be 1 (bbolt is single-writer)")
	}
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		bad("Deployment strategy %q, want Recreate (bbolt file lock)", dep.Spec.Strategy.Type)
	}
	pod := dep.Spec.Template
	if dep.Spec.Selector == nil || !subset(dep.Spec.Selector.MatchLabels, pod.Labels) || len(dep.Spec.Selector.MatchLabels) == 0 {
		bad("Deployment selector does not match its pod labels")
	}
	if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, pod.Labels) {
		bad("Service selector %v does not select the pod labels %v", svc.Spec.Selector, pod.Labels)
	}
	if ps := pod.Spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		bad("pod securityContext.runAsNonRoot must be true")
	}

	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "gatehouse" {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		bad("no container named gatehouse")
		return problems
	}
	flags, err := parseArgs(c.Args)
	if err != nil {
		bad("container args: %v", err)
	}
	issuer := "http://" + svcFQDN + fmt.Sprintf(":%d", svcPort("http"))
	wantFlags := map[string]string{
		"--data-dir":       "/data",
		"--authz-addr":     "0.0.0.0:9001",
		"--admin-addr":     "0.0.0.0:9002",
		"--http-addr":      "0.0.0.0:9003",
		"--issuer":         issuer,
		"--admin-key-file": "/etc/gatehouse/" + adminKeyKey,
	}
	for f, want := range wantFlags {
		if flags[f] != want {
			bad("serve %s = %q, want %q", f, flags[f], want)
		}
	}
	if u, err := url.Parse(flags["--issuer"]); err != nil || u.Host != fmt.Sprintf("%s:%d", svcFQDN, svcPort("http")) {
		bad("--issuer %q must be the Service's http URL", flags["--issuer"])
	}

	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		bad("container securityContext must forbid privilege escalation, make / read-only and drop ALL capabilities")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		bad("container resources must request cpu and memory and limit memory")
	}

	// Ports: valid names, Service targets exist, flags listen where the container says.
	containerPort := map[string]int32{}
	for _, p := range c.Ports {
		if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
			bad("container port name %q: %v", p.Name, errs)
		}
		containerPort[p.Name] = p.ContainerPort
	}
	for name, want := range map[string]int32{"grpc-authz": 9001, "grpc-admin": 9002, "http": 9003} {
		if svcPort(name) != want || containerPort[name] != want {
			bad("port %s: Service %d, container %d, want %d", name, svcPort(name), containerPort[name], want)
		}
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := containerPort[p.TargetPort.String()]; !ok {
			bad("Service port %s targets %q, not a container port name", p.Name, p.TargetPort.String())
		}
	}

	// Probes on the http port.
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			bad("%s must be an httpGet", pr.name)
			continue
		}
		g := pr.probe.HTTPGet
		port := g.Port.IntVal
		if g.Port.StrVal != "" {
			port = containerPort[g.Port.StrVal]
		}
		if g.Path != pr.path || port != 9003 {
			bad("%s = %s on port %v, want %s on 9003", pr.name, g.Path, g.Port.String(), pr.path)
		}
	}

	// Volumes: /data from the PVC, the admin key from the Secret, read-only.
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
	}
	dataOK, keyOK := false, false
	for _, v := range pod.Spec.Volumes {
		vm, mounted := mounts[v.Name]
		switch {
		case v.PersistentVolumeClaim != nil:
			dataOK = mounted && v.PersistentVolumeClaim.ClaimName == pvc.Name && vm.MountPath == flags["--data-dir"] && !vm.ReadOnly
		case v.Secret != nil:
			hasItem := false
			for _, it := range v.Secret.Items {
				hasItem = hasItem || (it.Key == adminKeyKey && vm.MountPath+"/"+it.Path == flags["--admin-key-file"])
			}
			keyOK = mounted && vm.ReadOnly && hasItem && v.Secret.SecretName == sec.Name &&
				(v.Secret.Optional == nil || !*v.Secret.Optional) &&
				v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o040 != 0 && *v.Secret.DefaultMode&0o007 == 0
		}
	}
	if !dataOK {
		bad("no writable /data mount of the PersistentVolumeClaim %q matching --data-dir", pvc.Name)
	}
	if !keyOK {
		bad("the admin key Secret %q must be mounted read-only, not optional, group-readable (fsGroup) and not world-readable, at --admin-key-file", sec.Name)
	}
	if ps := pod.Spec.SecurityContext; ps == nil || ps.FSGroup == nil {
		bad("pod securityContext.fsGroup must be set (volume and Secret group ownership)")
	}

	// PVC and Secret.
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		bad("PVC accessModes %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		bad("PVC storage %s, want 1Gi", q.String())
	}
	if sec.Name != secretName {
		bad("Secret %q, want %q", sec.Name, secretName)
	}
	if _, ok := sec.StringData[adminKeyKey]; !ok {
		bad("Secret has no stringData[%q]", adminKeyKey)
	}
	if v := sec.StringData[adminKeyKey]; strings.HasPrefix(v, "ghak_") {
		bad("secret-example.yaml must hold a placeholder, never a real-looking admin key")
	}
	return problems
}

func subset(sub, super map[string]string) bool {
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

// parseArgs reads "serve --flag value ..." (the form the manifest uses) into flag -> value.
func parseArgs(args []string) (map[string]string, error) {
	if len(args) == 0 || args[0] != "serve" {
		return nil, fmt.Errorf("%q does not start with serve", args)
	}
	flags := map[string]string{}
	rest := args[1:]
	for len(rest) > 0 {
		f := rest[0]
		if !strings.HasPrefix(f, "--") {
			return nil, fmt.Errorf("%q is not a flag", f)
		}
		if name, value, ok := strings.Cut(f, "="); ok {
			flags[name], rest = value, rest[1:]
			continue
		}
		if len(rest) < 2 {
			return nil, fmt.Errorf("%s has no value", f)
		}
		if _, dup := flags[f]; dup {
			return nil, fmt.Errorf("%s given twice", f)
		}
		flags[f], rest = rest[1], rest[2:]
	}
	return flags, nil
}

// mutate replaces old by new exactly once in files[name], failing when old is not there exactly
// once, so a mutation test cannot pass by changing nothing.
func mutate(t *testing.T, files map[string][]byte, name, old, new string) map[string][]byte {
	t.Helper()
	if n := strings.Count(string(files[name]), old); n != 1 {
		t.Fatalf("%s: %q found %d times, want exactly 1", name, old, n)
	}
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = v
	}
	out[name] = []byte(strings.Replace(string(files[name]), old, new, 1))
	return out
}

// TestDecodeRejectsMistakes proves each decoder is strict: a misspelled field is an error in every
// file, as it would be for istiod or the API server.
func TestDecodeRejectsMistakes(t *testing.T) {
	files := readAll(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"mesh provider field", meshFile, "failOpen: false", "failOpn: false", "failOpn"},
		{"mesh top-level key", meshFile, "meshConfig:", "meshconfig:", "meshconfig"},
		{"mesh enum value", meshFile, "normalization: MERGE_SLASHES", "normalization: MERGE", "MERGE"},
		{"mesh duration", meshFile, "timeout: 0.25s", "timeout: 250", "250"},
		{"policy spec field", policyFile, "notPaths:", "notPath:", "notPath"},
		{"policy metadata field", policyFile, "namespace: demo", "namespce: demo", "namespce"},
		{"policy top-level field", policyFile, "spec:", "spek:", "spek"},
		{"policy kind", policyFile, "kind: AuthorizationPolicy", "kind: AuthorisationPolicy", "AuthorisationPolicy"},
		{"deployment field", kubeFile, "readinessProbe:", "readinesProbe:", "readinesProbe"},
		{"deployment field case", kubeFile, "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"},
		{"service field", kubeFile, "targetPort: grpc-authz", "targetport: grpc-authz", "targetport"},
		{"pvc field", kubeFile, "accessModes:", "accesModes:", "accesModes"},
		{"pvc quantity", kubeFile, "storage: 1Gi", "storage: 1 GB", "quantities"},
		{"namespace field", kubeFile, "  labels:\n    # Sidecar", "  label:\n    # Sidecar", "label"},
		{"serviceaccount field", kubeFile, "\nautomountServiceAccountToken: false", "\nautomountServiceAcountToken: false", "automountServiceAcountToken"},
		{"unknown kind", kubeFile, "kind: PersistentVolumeClaim", "kind: PersistentVolume", "PersistentVolume"},
		{"wrong apiVersion", kubeFile, "apiVersion: apps/v1", "apiVersion: apps/v1beta1", "apps/v1beta1"},
		{"secret field", secretFile, "stringData:", "stringDta:", "stringDta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAll(mutate(t, files, tc.file, tc.old, tc.new))
			if err == nil {
				t.Fatal("decode succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestFactsBite proves each documented promise is checked: breaking it while keeping the file
// decodable makes facts() complain.
func TestFactsBite(t *testing.T) {
	files := readAll(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"fail open", meshFile, "failOpen: false", "failOpen: true", "failOpen"},
		{"default 403", meshFile, `statusOnError: "503"`, `statusOnError: "403"`, "statusOnError"},
		{"istio default timeout", meshFile, "timeout: 0.25s", "timeout: 600s", "timeout"},
		{"wrong service", meshFile, "service: gatehouse.gatehouse.svc.cluster.local", "service: gatehouse.default.svc.cluster.local", "provider service"},
		{"wrong port", meshFile, "port: 9001", "port: 9002", "provider port"},
		{"policy ALLOW", policyFile, "action: CUSTOM", "action: ALLOW", "CUSTOM"},
		{"policy other provider", policyFile, "name: gatehouse\n", "name: opa\n", "provider"},
		{"healthz checked", policyFile, `notPaths: ["/healthz"]`, `notPaths: ["/metrics"]`, "/healthz"},
		{"two replicas", kubeFile, "replicas: 1", "replicas: 2", "replicas"},
		{"rolling update", kubeFile, "type: Recreate", "type: RollingUpdate", "Recreate"},
		{"root", kubeFile, "        runAsNonRoot: true\n        runAsUser", "        runAsNonRoot: false\n        runAsUser", "runAsNonRoot"},
		{"writable root", kubeFile, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only"},
		{"escalation", kubeFile, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "privilege"},
		{"wrong issuer", kubeFile, "- http://gatehouse.gatehouse.svc.cluster.local:9003", "- http://127.0.0.1:9003", "--issuer"},
		{"no admin key flag", kubeFile, "        - --admin-key-file\n        - /etc/gatehouse/admin.key\n", "", "--admin-key-file"},
		{"readiness path", kubeFile, "path: /readyz", "path: /ready", "readinessProbe"},
		{"service selector", kubeFile, "  selector:\n    app.kubernetes.io/name: gatehouse\n  # Port", "  selector:\n    app: gatehouse\n  # Port", "Service selector"},
		{"service port", kubeFile, "port: 9001\n", "port: 9011\n", "grpc-authz"},
		{"secret world readable", kubeFile, "defaultMode: 0440", "defaultMode: 0444", "admin key Secret"},
		{"secret optional", kubeFile, "secretName: gatehouse-admin-key\n", "secretName: gatehouse-admin-key\n          optional: true\n", "admin key Secret"},
		{"pvc size", kubeFile, "storage: 1Gi", "storage: 2Gi", "PVC storage"},
		{"pvc shared", kubeFile, `accessModes: ["ReadWriteOnce"]`, `accessModes: ["ReadWriteMany"]`, "accessModes"},
		{"wrong namespace", secretFile, "namespace: gatehouse", "namespace: default", "namespace"},
		{"real-looking key", secretFile, "admin.key: REPLACE_WITH_A_GATEHOUSE_ADMIN_KEY", "admin.key: ghak_x", "placeholder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeAll(mutate(t, files, tc.file, tc.old, tc.new))
			if err != nil {
				t.Fatalf("decode: %v (the mutation should only break a documented fact)", err)
			}
			problems := strings.Join(facts(m), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("facts() = %q, want a problem mentioning %q", problems, tc.want)
			}
		})
	}
}

func TestSplitDocs(t *testing.T) {
	docs, err := splitDocs([]byte("# header only\n---\na: 1\n---\n# nothing\n---\nb: 2\nc: '---'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2: %q", len(docs), docs)
	}
}
