"""Properties of the rendered chart that a platform team relies on, asserted on the output
of `helm template` with the default and the production values.

Usage: properties.py <helm> <chart> <default.yaml> <production.yaml>
"""

import subprocess
import sys

import yaml

SERVICES = {
    "partner-registry": "mosip.pms.partner.v1.PartnerRegistry",
    "certificate-store": "mosip.pms.certstore.v1.CertificateStore",
    "ftm-management": "mosip.pms.ftm.v1.FtmManagement",
}
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def objects(path):
    with open(path, encoding="utf-8") as rendered:
        return [document for document in yaml.safe_load_all(rendered) if document]


def render(helm, chart, *arguments, release="pmp"):
    """The objects `helm template` renders for `release` with `arguments`."""
    output = subprocess.run(
        [helm, "template", release, chart, *arguments], capture_output=True, text=True, check=True
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def environment_of(container):
    return {entry["name"]: entry.get("value") for entry in container["env"]}


def by_kind(documents, kind):
    return [document for document in documents if document["kind"] == kind]


def component(document):
    return document["metadata"]["labels"]["app.kubernetes.io/component"]


def check_labels_and_names(documents, values):
    for document in documents:
        name = document["metadata"]["name"]
        labels = document["metadata"].get("labels", {})
        check(len(name) <= 63, f"{values}: name {name} is longer than 63 characters")
        for label in RECOMMENDED_LABELS:
            check(label in labels, f"{values}: {document['kind']} {name} lacks label {label}")
        check(
            labels.get("app.kubernetes.io/instance") == "pmp",
            f"{values}: {name} is not selectable by app.kubernetes.io/instance=pmp",
        )


def check_pod_security(name, pod, values):
    security = pod.get("securityContext", {})
    check(security.get("runAsNonRoot") is True, f"{values}: {name} may run as root")
    check(security.get("runAsUser", 0) > 0, f"{values}: {name} has no non-root user")
    check(security.get("runAsGroup", 0) > 0, f"{values}: {name} has no non-root group")
    check(
        security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        f"{values}: {name} has no RuntimeDefault seccomp profile",
    )
    check(
        pod.get("automountServiceAccountToken") is False,
        f"{values}: {name} mounts a service account token",
    )
    for container in pod["containers"]:
        context = container.get("securityContext", {})
        check(
            context.get("allowPrivilegeEscalation") is False,
            f"{values}: {name}/{container['name']} allows privilege escalation",
        )
        check(
            context.get("readOnlyRootFilesystem") is True,
            f"{values}: {name}/{container['name']} has a writable root file system",
        )
        check(
            context.get("capabilities", {}).get("drop") == ["ALL"],
            f"{values}: {name}/{container['name']} keeps Linux capabilities",
        )


def check_database_url_is_a_file(name, environment, prefix, values):
    check(
        f"{prefix}__DATABASE__URL" not in environment,
        f"{values}: {name} has its database URL (and password) in an environment variable",
    )
    check(
        environment.get(f"{prefix}__DATABASE__URL_FILE") == "/secrets/database/url",
        f"{values}: {name} does not read its database URL from the mounted Secret",
    )


def check_service_deployments(documents, values, tls):
    deployments = {component(document): document for document in by_kind(documents, "Deployment")}
    for service, grpc_name in SERVICES.items():
        deployment = deployments.get(service)
        check(deployment is not None, f"{values}: no Deployment of {service}")
        if deployment is None:
            continue
        pod = deployment["spec"]["template"]["spec"]
        check_pod_security(service, pod, values)
        container = pod["containers"][0]
        environment = environment_of(container)
        prefix = next(key.split("__")[0] for key in environment if key.endswith("__SERVER__LISTEN"))
        check_database_url_is_a_file(service, environment, prefix, values)
        delay = int(environment[f"{prefix}__SERVER__SHUTDOWN_DELAY_SECONDS"])
        grace = int(environment[f"{prefix}__SERVER__SHUTDOWN_GRACE_SECONDS"])
        check(
            pod["terminationGracePeriodSeconds"] >= delay + grace,
            f"{values}: {service} is killed before its shutdown delay and grace are over",
        )
        probes = {kind: container.get(kind) for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        for kind, probe in probes.items():
            check(probe is not None, f"{values}: {service} has no {kind}")
        if tls or None in probes.values():
            continue
        check(
            probes["readinessProbe"].get("grpc", {}).get("service") == grpc_name,
            f"{values}: {service}'s readiness does not ask its own gRPC service",
        )
        for kind in ("startupProbe", "livenessProbe"):
            check(
                probes[kind].get("grpc", {}).get("service") == "liveness",
                f"{values}: {service}'s {kind} is not the gRPC 'liveness' check",
            )


def check_callers_balance_over_replicas(documents, values):
    """Every address a component is given is a headless Service selecting exactly the
    callee's pods, so callers resolve every ready replica and spread their calls."""
    services = {document["metadata"]["name"]: document for document in by_kind(documents, "Service")}
    deployments = {component(document): document for document in by_kind(documents, "Deployment")}
    addresses = 0
    for deployment in deployments.values():
        environment = environment_of(deployment["spec"]["template"]["spec"]["containers"][0])
        for key, value in environment.items():
            if not (key.endswith(("__ADDRESS", "__REGISTRY_ADDRESS")) or key.startswith("PMP_PORTAL__SERVICES__")):
                continue
            if not isinstance(value, str) or "://" not in value:
                continue
            addresses += 1
            host = value.split("://", 1)[1].rsplit(":", 1)[0]
            service = services.get(host)
            check(service is not None, f"{values}: {key} names {host}, which is no Service")
            if service is None:
                continue
            check(
                service["spec"].get("clusterIP") == "None",
                f"{values}: {key} names {host}, which is not headless: a caller would stick to one pod",
            )
            callee = deployments.get(component(service))
            check(
                callee is not None
                and service["spec"]["selector"] == callee["spec"]["selector"]["matchLabels"],
                f"{values}: {host} does not select exactly the pods of {component(service)}",
            )
    check(addresses >= 8, f"{values}: only {addresses} service addresses found in the environments")


def check_hsm_keys(documents, values, hsm):
    """With the HSM on, every key is named by label and no Secret with a private key is
    mounted; with it off, every key is a mounted file."""
    deployments = {component(document): document for document in by_kind(documents, "Deployment")}
    for service in SERVICES:
        deployment = deployments.get(service)
        if deployment is None:
            continue
        pod = deployment["spec"]["template"]["spec"]
        environment = environment_of(pod["containers"][0])
        volumes = {volume["name"] for volume in pod.get("volumes", [])}
        labels = [key for key in environment if key.endswith("_KEY_LABEL")]
        key_files = [
            key for key in environment
            if key.endswith(("PRIVATE_KEY_FILE", "SIGNING_KEY_FILE"))
        ]
        if hsm:
            check(not key_files, f"{values}: {service} still reads key files {key_files}")
            check("identity" not in volumes and "token-key" not in volumes,
                  f"{values}: {service} mounts a private key Secret with the HSM on")
            check("hsm-pin" in volumes, f"{values}: {service} does not mount the HSM PIN")
            expected = {"partner-registry": 2, "certificate-store": 2, "ftm-management": 1}[service]
            check(len(labels) == expected, f"{values}: {service} names keys {labels}")
            check(any(key.endswith("__HSM__PIN_FILE") for key in environment),
                  f"{values}: {service} has no HSM PIN file")
        else:
            check(not labels, f"{values}: {service} names HSM keys {labels} with the HSM off")
            check("identity" in volumes, f"{values}: {service} mounts no identity key")


def check_migrations(documents, values):
    jobs = {component(document): document for document in by_kind(documents, "Job")}
    for service in SERVICES:
        job = jobs.get(f"{service}-migrate")
        check(job is not None, f"{values}: no migration Job for {service}")
        if job is None:
            continue
        hooks = job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        check(
            set(hooks.split(",")) == {"pre-install", "pre-upgrade"},
            f"{values}: the migration Job of {service} is not a pre-install/pre-upgrade hook",
        )
        pod = job["spec"]["template"]["spec"]
        check_pod_security(f"{service}-migrate", pod, values)
        environment = environment_of(pod["containers"][0])
        prefix = next(key.split("__")[0] for key in environment if key.endswith("__TELEMETRY__LOG_LEVEL"))
        check_database_url_is_a_file(f"{service}-migrate", environment, prefix, values)
        command = pod["containers"][0]["command"]
        check(
            command[0].endswith(f"/{service}") and command[-1] == "migrate",
            f"{values}: the migration Job of {service} does not run `{service} migrate`",
        )


def check_helm_test(documents, values):
    tests = [
        document
        for document in by_kind(documents, "Pod")
        if document["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    check(len(tests) == 1, f"{values}: no `helm test` Pod")
    for test in tests:
        pod = test["spec"]
        check_pod_security("helm test", pod, values)
        check(
            pod["containers"][0]["command"][1:2] == ["health"],
            f"{values}: `helm test` does not run pmpctl health",
        )


def check_disruption_budgets(documents, values):
    budgets = {component(document) for document in by_kind(documents, "PodDisruptionBudget")}
    for service in SERVICES:
        check(service in budgets, f"{values}: no PodDisruptionBudget for {service}")


# Who may open gRPC connections to whom with networkPolicy.enabled (None: anyone).
GRPC_CALLERS = {
    "partner-registry": None,
    "certificate-store": {"partner-registry", "ftm-management", "portal"},
    "ftm-management": {"portal"},
}


def check_network_policies(helm, chart):
    documents = render(helm, chart, "--set", "networkPolicy.enabled=true")
    policies = {component(document): document for document in by_kind(documents, "NetworkPolicy")}
    for service, expected in GRPC_CALLERS.items():
        policy = policies.get(service)
        check(policy is not None, f"network policies: none for {service}")
        if policy is None:
            continue
        grpc_rule, metrics_rule = policy["spec"]["ingress"]
        callers = grpc_rule.get("from")
        if expected is None:
            check(callers is None, f"network policies: {service} is not open to its clients")
        else:
            names = {peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") for peer in callers or []}
            check(names == expected, f"network policies: {service} accepts gRPC from {names}, not {expected}")
        check(bool(metrics_rule.get("from")), f"network policies: anyone may scrape {service}")


# Values documented as one row although they are maps.
WHOLE_VALUES = ("resources", "autoscaling", "metricsFrom")


def value_paths(values, prefix=""):
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and not key.endswith(WHOLE_VALUES):
            yield from value_paths(value, path)
        else:
            yield path


def check_readme_matches_values(chart):
    with open(f"{chart}/values.yaml", encoding="utf-8") as values_file:
        values = set(value_paths(yaml.safe_load(values_file)))
    with open(f"{chart}/README.md", encoding="utf-8") as readme:
        documented = {
            line.split("`")[1]
            for line in readme
            if line.startswith("| `") and line.count("`") >= 2
        }
    for path in sorted(values - documented):
        failures.append(f"README.md does not document value {path}")
    for path in sorted(documented - values):
        failures.append(f"README.md documents {path}, which values.yaml does not have")


def check_schema_rejects_typos(helm, chart):
    for typo in ("registry.replica=5", "shutdown.delaySecond=5", "tls.clientAuth=sometimes"):
        result = subprocess.run(
            [helm, "template", "pmp", chart, "--set", typo],
            capture_output=True,
            text=True,
            check=False,
        )
        check(result.returncode != 0, f"values.schema.json accepts --set {typo}")


def main():
    helm, chart, default, production = sys.argv[1:5]
    # The production example turns on TLS and the HSM; the defaults neither.
    for path, name, is_production in ((default, "default values", False), (production, "production values", True)):
        documents = objects(path)
        check_labels_and_names(documents, name)
        check_service_deployments(documents, name, is_production)
        check_migrations(documents, name)
        check_callers_balance_over_replicas(documents, name)
        check_hsm_keys(documents, name, is_production)
        check_disruption_budgets(documents, name)
        check_helm_test(documents, name)
    check_schema_rejects_typos(helm, chart)
    check_network_policies(helm, chart)
    check_readme_matches_values(chart)
    long_release = "r" * 53  # the longest release name helm accepts
    for document in render(helm, chart, release=long_release):
        name = document["metadata"]["name"]
        check(len(name) <= 63, f"release {long_release}: name {name} is too long")
    if failures:
        print("chart properties violated:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("chart properties hold")


if __name__ == "__main__":
    main()
