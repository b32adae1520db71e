# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that imports kubernetes.core's module_utils.

kubernetes.core does not declare these helpers a public API, so every other file of this
collection imports them from here, and galaxy.yml pins kubernetes.core below its next major
release. Errors from the Kubernetes client become ApiError with one readable message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json


class MissingLibraryError(Exception):
    """Exception class that replaces a client library's exceptions when that library is missing.

    Nothing raises it, so an except clause naming it catches nothing, and modules report the
    missing library before they call the API.
    """


try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
        AUTH_ARG_SPEC,
    )
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
        get_api_client,
    )
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import (
        AnsibleK8SModule,
    )
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
        CoreException,
    )

    HAS_KUBERNETES_CORE = True
except ImportError:
    AUTH_ARG_SPEC = {}
    AnsibleK8SModule = None
    CoreException = MissingLibraryError
    get_api_client = None
    HAS_KUBERNETES_CORE = False

try:
    from kubernetes.dynamic.exceptions import (
        DynamicApiError,
        NotFoundError,
        ResourceNotFoundError,
    )

    HAS_KUBERNETES = True
except ImportError:
    DynamicApiError = MissingLibraryError
    NotFoundError = MissingLibraryError
    ResourceNotFoundError = MissingLibraryError
    HAS_KUBERNETES = False

try:
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    Urllib3Error = MissingLibraryError

try:
    from kubernetes.client.api.core_v1_api import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream
except ImportError:
    ApiException = MissingLibraryError
    CoreV1Api = None
    stream = None


HTTP_CONFLICT = 409
# Channel on which the API server's exec endpoint sends the command's exit status.
EXEC_STATUS_CHANNEL = 3


class ApiError(Exception):
    """A Kubernetes API call that failed; the message is meant for the user."""

    def __init__(self, message, status=None):
        super(ApiError, self).__init__(message)
        self.status = status


def auth_argument_spec():
    """Return a copy of kubernetes.core's auth options, with their K8S_AUTH_* fallbacks."""
    return copy.deepcopy(AUTH_ARG_SPEC)


def new_module(argument_spec, **kwargs):
    """Create an AnsibleK8SModule, or a plain module that fails when kubernetes.core is absent."""
    if not HAS_KUBERNETES_CORE:
        from ansible.module_utils.basic import AnsibleModule

        module = AnsibleModule(argument_spec=argument_spec, **kwargs)
        module.fail_json(
            msg="The kubernetes.core collection (>=6.0.0,<7.0.0) must be installed: run "
            "'ansible-galaxy collection install kubernetes.core'."
        )
    return AnsibleK8SModule(argument_spec=argument_spec, **kwargs)


def connect(module):
    """Return kubernetes.core's K8SClient; it sends dry_run=All on writes in check mode."""
    try:
        return get_api_client(module=module)
    except CoreException as exc:
        raise ApiError(
            "{0}. Check kubeconfig, context, host or the K8S_AUTH_* variables.".format(exc)
        )
    except (DynamicApiError, Urllib3Error, OSError) as exc:
        raise describe_api_error(exc, "connect to the Kubernetes API")


def describe_api_error(exc, action):
    """Build an ApiError that names the ``action`` that failed and why, without a traceback."""
    if isinstance(exc, DynamicApiError):
        reason = getattr(exc, "summary", None)
        text = reason() if callable(reason) else str(exc)
        return ApiError(
            "Failed to {0}: HTTP {1}: {2}".format(action, exc.status, text),
            status=exc.status,
        )
    if isinstance(exc, (Urllib3Error, OSError)):
        return ApiError(
            "Failed to {0}: the Kubernetes API server cannot be reached ({1}). Check that "
            "it is running and that kubeconfig, host or K8S_AUTH_HOST point at it.".format(
                action, type(exc).__name__
            )
        )
    return ApiError("Failed to {0}: {1}".format(action, exc))


class ObjectStore:
    """Read and write one kind of Kubernetes object through kubernetes.core's client."""

    def __init__(self, client, kind, api_version):
        self.client = client
        self.kind = kind
        self.api_version = api_version
        self._resource = None

    @property
    def resource(self):
        if self._resource is None:
            try:
                self._resource = self.client.resource(self.kind, self.api_version)
            except ResourceNotFoundError:
                raise ApiError(
                    "The API server does not serve {0} in {1}; install its "
                    "CustomResourceDefinition first.".format(
                        self.kind, self.api_version
                    ),
                    status=404,
                )
            except (DynamicApiError, Urllib3Error, OSError) as exc:
                raise describe_api_error(
                    exc, "look up the {0} API".format(self.kind)
                )
        return self._resource

    @property
    def dry_run(self):
        return self.client.dry_run

    def get(self, name, namespace):
        """Return the object as a dict, or None when it does not exist."""
        resource = self.resource
        try:
            found = self.client.get(resource, name=name, namespace=namespace)
        except NotFoundError:
            return None
        except (DynamicApiError, Urllib3Error, OSError) as exc:
            raise describe_api_error(
                exc, "read {0} {1}/{2}".format(self.kind, namespace, name)
            )
        return found.to_dict()

    def list(self, namespace=None, label_selector=None):
        """Return the objects of this kind as dicts, optionally in one namespace."""
        resource = self.resource
        params = {}
        if namespace:
            params["namespace"] = namespace
        if label_selector:
            params["label_selector"] = label_selector
        try:
            found = self.client.get(resource, **params)
        except (DynamicApiError, Urllib3Error, OSError) as exc:
            raise describe_api_error(exc, "list {0} objects".format(self.kind))
        return list(found.to_dict().get("items") or [])

    def create(self, body, namespace):
        return self._write("create", body, namespace)

    def replace(self, body, namespace):
        """Replace the object; the resourceVersion in ``body`` makes a stale write fail with 409."""
        return self._write("replace", body, namespace)

    def delete(self, name, namespace):
        resource = self.resource
        try:
            self.client.delete(resource, name=name, namespace=namespace)
        except NotFoundError:
            return
        except (DynamicApiError, Urllib3Error, OSError) as exc:
            raise describe_api_error(
                exc, "delete {0} {1}/{2}".format(self.kind, namespace, name)
            )

    def _write(self, verb, body, namespace):
        resource = self.resource
        method = getattr(self.client, verb)
        try:
            written = method(resource, body, namespace=namespace)
        except (DynamicApiError, Urllib3Error, OSError) as exc:
            raise describe_api_error(
                exc,
                "{0} {1} {2}/{3}".format(
                    verb, self.kind, namespace, body["metadata"]["name"]
                ),
            )
        return written.to_dict()


class ExecResult:
    """Output and exit code of a command run in a container."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def exec_in_pod(client, namespace, pod, container, command, timeout):
    """Run ``command`` in a container through the API server's exec endpoint.

    ``client`` is the K8SClient that connect() returns. Its dynamic client contains the
    kubernetes ApiClient, which kubernetes.core's k8s_exec module also passes to the exec
    stream. Return an ExecResult, also for a non-zero exit code. Raise ApiError when the
    command cannot run (no such pod or container, no kubelet behind the node, a missing
    executable) or does not end within ``timeout`` seconds.
    """
    api = CoreV1Api(client.client.client)
    action = "run '{0}' in pod {1}/{2}".format(" ".join(command), namespace, pod)
    try:
        session = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            container=container,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
    except ApiException as exc:
        raise ApiError(
            "Failed to {0}: {1}".format(action, exc.reason or exc), status=exc.status
        )

    try:
        session.run_forever(timeout=timeout)
        if session.is_open():
            raise ApiError(
                "Failed to {0}: the command did not finish within {1} s.".format(
                    action, timeout
                )
            )
        stdout = session.read_stdout() or ""
        stderr = session.read_stderr() or ""
        outcome = session.read_channel(EXEC_STATUS_CHANNEL) or ""
    finally:
        session.close()
    return ExecResult(_exit_code(outcome, action), stdout, stderr)


def _exit_code(outcome, action):
    """Read the exit code from the status document that the exec endpoint sends last."""
    try:
        document = json.loads(outcome) if outcome else {}
    except ValueError:
        raise ApiError(
            "Failed to {0}: the exec status {1!r} is not JSON.".format(action, outcome)
        )
    if document.get("status") == "Success":
        return 0
    if document.get("reason") == "NonZeroExitCode":
        for cause in (document.get("details") or {}).get("causes") or []:
            code = str(cause.get("message"))
            if cause.get("reason") == "ExitCode" and code.isdigit():
                return int(code)
    message = document.get("message") or "the API server sent no exit status"
    raise ApiError("Failed to {0}: {1}".format(action, message))
