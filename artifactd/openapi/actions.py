"""Every action the API answers: the one table validation and docs are built from.

Field names, types and nesting follow the models of the official SDK
(``alibabacloud_cr20181201``), so a response decodes without loss. Actions
marked ``extension=True`` do not exist in the cloud API; they are answered in
the same style and listed as extensions in the reference page.
"""

from __future__ import annotations

from artifactd.openapi.schema import (
    ARRAY,
    BOOLEAN,
    INTEGER,
    LONG,
    OBJECT,
    STRING,
    Action,
    Field,
    Param,
)

NAME_DOC = "lower-case letters, digits and `_` `-` `.`, starting and ending with "
NAMESPACE_NAME_RE = r"[a-z0-9](?:[a-z0-9._-]{0,118}[a-z0-9])"
REPO_NAME_RE = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])"
TAG_RE = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
TASK_STATUSES = ("PENDING", "BUILDING", "SUCCESS", "FAILED", "CANCELED")
BUILD_TYPES = ("IMAGE_TO_ACCELERATED_IMAGE", "IMAGE_TO_ECI_ACCELERATED_IMAGE")
INSTANCE_STATUSES = (
    "PENDING",
    "INIT_ERROR",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "DELETING",
    "DELETED",
)

# Shared parameters -------------------------------------------------------

INSTANCE_ID = Param(
    "InstanceId", STRING, "The instance id (`cri-...`).", required=True, max_length=64
)
PAGE_NO = Param(
    "PageNo", INTEGER, "The page number, from 1.", default=1, minimum=1, maximum=10**6
)
PAGE_SIZE = Param(
    "PageSize",
    INTEGER,
    "The number of entries per page.",
    default=30,
    minimum=1,
    maximum=100,
)
MAX_RESULTS = Param(
    "MaxResults",
    INTEGER,
    "Token paging: the number of entries to return. Takes priority over PageNo.",
    minimum=1,
    maximum=100,
)
NEXT_TOKEN = Param(
    "NextToken",
    STRING,
    "Token paging: the `NextToken` of the previous page.",
    max_length=256,
)
REPO_ID = Param("RepoId", STRING, "The repository id (`crr-...`).", max_length=64)
REPO_NAMESPACE_NAME = Param(
    "RepoNamespaceName", STRING, "The namespace of the repository.", max_length=120
)
REPO_NAME = Param("RepoName", STRING, "The repository name.", max_length=64)
REPO_TYPE = Param(
    "RepoType", STRING, "The repository type.", choices=("PUBLIC", "PRIVATE")
)
SUMMARY = Param("Summary", STRING, "A one-line summary.", max_length=100)
DETAIL = Param("Detail", STRING, "A longer description.", max_length=2000)
TAG_IMMUTABILITY = Param(
    "TagImmutability", BOOLEAN, "Whether tags may be overwritten or deleted."
)
BUILD_TASK_ID = Param(
    "BuildTaskId",
    STRING,
    "The build task id (`i2a-...`).",
    required=True,
    max_length=64,
)
BUILD_RULE_ID = Param(
    "BuildRuleId", STRING, "The build rule id (`crabr-...`).", max_length=64
)
ARTIFACT_TYPE = Param(
    "ArtifactType",
    STRING,
    "The kind of artifact the rule builds.",
    choices=("ACCELERATED_IMAGE",),
)
SCOPE_TYPE = Param(
    "ScopeType",
    STRING,
    "What the rule applies to: one repository, or (extension) every "
    "repository of a namespace.",
    choices=("REPOSITORY", "NAMESPACE"),
)
SCOPE_ID = Param(
    "ScopeId",
    STRING,
    "The repository id (`crr-...`) or namespace id (`crn-...`).",
    max_length=64,
)
RULE_PARAMETERS = Param(
    "Parameters",
    OBJECT,
    "Build parameters, a JSON object in one value.",
    fields=(
        Param(
            "ImageIndexOnly",
            BOOLEAN,
            "Index-only acceleration. Only `false` is supported.",
            default=False,
        ),
        Param(
            "Priority",
            INTEGER,
            "Priority of the rule's tasks, 1 (lowest) to 5.",
            default=1,
            minimum=1,
            maximum=5,
        ),
        Param(
            "PriorityFile",
            STRING,
            "Base64 of a newline-separated list of absolute paths to place "
            "first in each layer (prefetched on pull).",
            max_length=65536,
        ),
    ),
)
REPO_CONFIGURATION = Param(
    "DefaultRepoConfiguration",
    OBJECT,
    "Defaults for repositories created in the namespace, a JSON object.",
    fields=(
        Param("RepoType", STRING, "Repository type.", choices=("PUBLIC", "PRIVATE")),
        Param("TagImmutability", BOOLEAN, "Whether tags are immutable."),
        Param(
            "ArtifactBuildRuleParameters",
            OBJECT,
            "Build rule created with each repository.",
            fields=(Param("ImageIndexOnly", BOOLEAN, "Index-only acceleration."),),
        ),
    ),
)

# Shared response fields --------------------------------------------------

TAGS = Field(
    "Tags",
    ARRAY,
    "Resource tags (always empty).",
    (Field("TagKey", STRING, "Tag key."), Field("TagValue", STRING, "Tag value.")),
)


def _instance_fields(times: str) -> tuple[Field, ...]:
    return (
        Field("InstanceId", STRING, "Instance id, `cri-...`."),
        Field("InstanceName", STRING, "Instance name."),
        Field("InstanceStatus", STRING, "`RUNNING` while the service is up."),
        Field("InstanceSpecification", STRING, "Always `Enterprise_Advanced`."),
        Field("InstanceIssue", STRING, "Problem with the instance, if any."),
        Field("ResourceGroupId", STRING, "Resource group (empty)."),
        Field("CreateTime", times, "Creation time, epoch milliseconds."),
        Field("ModifiedTime", times, "Last change, epoch milliseconds."),
        TAGS,
    )


REPO_CONFIGURATION_FIELD = Field(
    "DefaultRepoConfiguration",
    OBJECT,
    "Defaults for new repositories.",
    (
        Field("RepoType", STRING, "`PUBLIC` or `PRIVATE`."),
        Field("TagImmutability", BOOLEAN, "Whether tags are immutable."),
        Field(
            "ArtifactBuildRuleParameters",
            OBJECT,
            "Build rule created with each repository.",
            (Field("ImageIndexOnly", BOOLEAN, "Index-only acceleration."),),
        ),
    ),
)
NAMESPACE_FIELDS = (
    Field("NamespaceId", STRING, "Namespace id, `crn-...`."),
    Field("NamespaceName", STRING, "Namespace name."),
    Field("NamespaceStatus", STRING, "`NORMAL`."),
    Field("AutoCreateRepo", BOOLEAN, "Whether a push creates missing repositories."),
    Field("DefaultRepoType", STRING, "Type of automatically created repositories."),
    REPO_CONFIGURATION_FIELD,
    Field("InstanceId", STRING, "Instance id."),
    Field("ResourceGroupId", STRING, "Resource group (empty)."),
)
REPOSITORY_FIELDS = (
    Field("RepoId", STRING, "Repository id, `crr-...`."),
    Field("InstanceId", STRING, "Instance id."),
    Field("RepoName", STRING, "Repository name."),
    Field("RepoNamespaceName", STRING, "Namespace name."),
    Field("RepoType", STRING, "`PUBLIC` or `PRIVATE`."),
    Field("RepoStatus", STRING, "`NORMAL`."),
    Field("RepoBuildType", STRING, "`MANUAL`."),
    Field("Summary", STRING, "One-line summary."),
    Field("TagImmutability", BOOLEAN, "Whether tags are immutable."),
    Field("CreateTime", LONG, "Creation time, epoch milliseconds."),
    Field("ModifiedTime", LONG, "Last change, epoch milliseconds."),
    Field("ResourceGroupId", STRING, "Resource group (empty)."),
)


def _image_fields(times: str) -> tuple[Field, ...]:
    return (
        Field("Tag", STRING, "Tag name."),
        Field("Digest", STRING, "Manifest digest, 64 hex digits without `sha256:`."),
        Field("ImageId", STRING, "Config digest, 64 hex digits."),
        Field("ImageSize", LONG, "Manifest, config and layer bytes."),
        Field("Status", STRING, "`NORMAL`."),
        Field("ImageCreate", times, "When the tag was first pushed, epoch ms."),
        Field("ImageUpdate", times, "When the tag last moved, epoch ms."),
    )


PAGE_FIELDS = (
    Field("PageNo", INTEGER, "Page number."),
    Field("PageSize", INTEGER, "Entries per page."),
)
TOKEN_FIELDS = (
    Field("MaxResults", INTEGER, "Entries asked for (MaxResults, else PageSize)."),
    Field(
        "NextToken",
        STRING,
        "Token paging: pass back for the next page; absent on the last page.",
    ),
)


def _artifact_fields(which: str) -> Field:
    return Field(
        which,
        OBJECT,
        f"The {'source' if which == 'SourceArtifact' else 'accelerated'} image.",
        (
            Field("ArtifactType", STRING, "`IMAGE`."),
            Field("RepoId", STRING, "Repository id."),
            Field("Version", STRING, "Tag."),
            Field("Size", LONG, "Bytes, once known."),
            Field("LayerCount", INTEGER, "Number of layers, once known."),
        ),
    )


BUILD_TASK_FIELDS = (
    Field("BuildTaskId", STRING, "Task id, `i2a-...`."),
    Field("TaskStatus", STRING, "One of " + ", ".join(TASK_STATUSES) + "."),
    Field("ArtifactBuildType", STRING, "One of " + ", ".join(BUILD_TYPES) + "."),
    Field("Priority", INTEGER, "1 (lowest) to 5."),
    Field("StartTime", LONG, "When the task started, epoch seconds (0 before)."),
    Field("EndTime", LONG, "When the task ended, epoch seconds (0 before)."),
    Field("Instructions", ARRAY, "Reserved; always empty."),
    _artifact_fields("SourceArtifact"),
    _artifact_fields("TargetArtifact"),
    Field(
        "ArtifactCompression",
        OBJECT,
        "Layer handling.",
        (
            Field("Platform", STRING, "Platform built, e.g. `linux/amd64`."),
            Field("SquashKeepLayers", INTEGER, "Layers kept unsquashed (0)."),
            Field("StartLayerDigest", STRING, "First squashed layer (empty)."),
        ),
    ),
)
BUILD_RULE_FIELDS = (
    Field("BuildRuleId", STRING, "Rule id, `crabr-...`."),
    Field("ArtifactType", STRING, "`ACCELERATED_IMAGE`."),
    Field("ScopeType", STRING, "`REPOSITORY` or `NAMESPACE`."),
    Field("ScopeId", STRING, "Repository or namespace id."),
    Field(
        "Parameters",
        OBJECT,
        "Build parameters (an object, unlike the request's JSON string).",
        (
            Field("ImageIndexOnly", BOOLEAN, "Index-only acceleration."),
            Field("Priority", INTEGER, "Task priority, 1 to 5."),
            Field("PriorityFile", STRING, "Base64 list of paths placed first."),
        ),
    ),
)

# The table ---------------------------------------------------------------

_INSTANCES = (
    Action(
        "ListInstance",
        "Instances",
        "Lists instances: the service's embedded registry is the one instance.",
        (
            PAGE_NO,
            PAGE_SIZE,
            Param("InstanceName", STRING, "Only this instance name.", max_length=128),
            Param(
                "InstanceStatus",
                STRING,
                "Only instances in this status.",
                choices=INSTANCE_STATUSES,
            ),
            Param(
                "ResourceGroupId", STRING, "Only this resource group.", max_length=64
            ),
        ),
        (
            *PAGE_FIELDS,
            Field("TotalCount", INTEGER, "Number of matching instances."),
            Field(
                "Instances",
                ARRAY,
                "The instances.",
                (
                    *_instance_fields(STRING),
                    Field("RegionId", STRING, "Configured region id."),
                ),
            ),
        ),
    ),
    Action(
        "GetInstance",
        "Instances",
        "Describes an instance.",
        (INSTANCE_ID,),
        _instance_fields(LONG),
        errors=("INSTANCE_NOT_EXIST",),
    ),
)

_NAMESPACES = (
    Action(
        "CreateNamespace",
        "Namespaces",
        "Creates a namespace.",
        (
            INSTANCE_ID,
            Param(
                "NamespaceName",
                STRING,
                "Namespace name, 2 to 120 characters.",
                required=True,
                max_length=120,
                pattern=NAMESPACE_NAME_RE,
                pattern_doc=NAME_DOC + "a letter or digit",
            ),
            Param(
                "AutoCreateRepo",
                BOOLEAN,
                "Create a repository on first push.",
                default=True,
            ),
            Param(
                "DefaultRepoType",
                STRING,
                "Type of repositories created on push.",
                choices=("PUBLIC", "PRIVATE"),
                default="PRIVATE",
            ),
            REPO_CONFIGURATION,
        ),
        errors=("INSTANCE_NOT_EXIST", "NAMESPACE_ALREADY_EXIST"),
    ),
    Action(
        "GetNamespace",
        "Namespaces",
        "Describes a namespace, by id or by name.",
        (
            INSTANCE_ID,
            Param("NamespaceId", STRING, "Namespace id (`crn-...`).", max_length=64),
            Param("NamespaceName", STRING, "Namespace name.", max_length=120),
        ),
        NAMESPACE_FIELDS,
        one_of=(("NamespaceId",), ("NamespaceName",)),
        errors=("INSTANCE_NOT_EXIST", "NAMESPACE_NOT_EXIST"),
    ),
    Action(
        "ListNamespace",
        "Namespaces",
        "Lists namespaces, oldest first.",
        (
            INSTANCE_ID,
            Param("NamespaceName", STRING, "Only this namespace.", max_length=120),
            Param(
                "NamespaceStatus",
                STRING,
                "Only namespaces in this status.",
                choices=("NORMAL", "DELETING", "ALL"),
            ),
            PAGE_NO,
            PAGE_SIZE,
        ),
        (
            *PAGE_FIELDS,
            Field("TotalCount", STRING, "Number of matching namespaces."),
            Field("Namespaces", ARRAY, "The namespaces.", NAMESPACE_FIELDS),
        ),
        errors=("INSTANCE_NOT_EXIST",),
    ),
    Action(
        "UpdateNamespace",
        "Namespaces",
        "Changes a namespace's repository defaults; omitted values are kept.",
        (
            INSTANCE_ID,
            Param(
                "NamespaceName",
                STRING,
                "Namespace name.",
                required=True,
                max_length=120,
            ),
            Param("AutoCreateRepo", BOOLEAN, "Create a repository on first push."),
            Param(
                "DefaultRepoType",
                STRING,
                "Type of repositories created on push.",
                choices=("PUBLIC", "PRIVATE"),
            ),
            REPO_CONFIGURATION,
        ),
        errors=("INSTANCE_NOT_EXIST", "NAMESPACE_NOT_EXIST"),
    ),
    Action(
        "DeleteNamespace",
        "Namespaces",
        "Deletes an empty namespace.",
        (
            INSTANCE_ID,
            Param(
                "NamespaceName",
                STRING,
                "Namespace name.",
                required=True,
                max_length=120,
            ),
        ),
        errors=("INSTANCE_NOT_EXIST", "NAMESPACE_NOT_EXIST", "NAMESPACE_NOT_EMPTY"),
    ),
)

_REPO_BY_NAME = (("RepoId",), ("RepoNamespaceName", "RepoName"))
_REPOSITORIES = (
    Action(
        "CreateRepository",
        "Repositories",
        "Creates a repository in an existing namespace.",
        (
            INSTANCE_ID,
            Param(
                "RepoNamespaceName",
                STRING,
                "The namespace.",
                required=True,
                max_length=120,
            ),
            Param(
                "RepoName",
                STRING,
                "Repository name, 2 to 64 characters.",
                required=True,
                max_length=64,
                pattern=REPO_NAME_RE,
                pattern_doc=NAME_DOC + "a letter or digit",
            ),
            Param(
                "RepoType",
                STRING,
                "The repository type.",
                required=True,
                choices=("PUBLIC", "PRIVATE"),
            ),
            Param(
                "Summary", STRING, "A one-line summary.", required=True, max_length=100
            ),
            DETAIL,
            Param(
                "TagImmutability",
                BOOLEAN,
                "Whether tags may be overwritten or deleted.",
                default=False,
            ),
        ),
        (Field("RepoId", STRING, "The new repository's id, `crr-...`."),),
        errors=("INSTANCE_NOT_EXIST", "NAMESPACE_NOT_EXIST", "REPO_ALREADY_EXIST"),
    ),
    Action(
        "GetRepository",
        "Repositories",
        "Describes a repository, by id or by namespace and name.",
        (INSTANCE_ID, REPO_ID, REPO_NAMESPACE_NAME, REPO_NAME),
        (*REPOSITORY_FIELDS, Field("Detail", STRING, "Longer description.")),
        one_of=_REPO_BY_NAME,
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST"),
    ),
    Action(
        "ListRepository",
        "Repositories",
        "Lists repositories, oldest first; page or token paging.",
        (
            INSTANCE_ID,
            PAGE_NO,
            PAGE_SIZE,
            Param(
                "RepoStatus",
                STRING,
                "Only repositories in this status.",
                choices=("NORMAL", "DELETING", "DELETED", "ALL"),
            ),
            REPO_NAME,
            REPO_NAMESPACE_NAME,
            MAX_RESULTS,
            NEXT_TOKEN,
        ),
        (
            *PAGE_FIELDS,
            *TOKEN_FIELDS,
            Field("TotalCount", STRING, "Number of matching repositories."),
            Field("Repositories", ARRAY, "The repositories.", REPOSITORY_FIELDS),
        ),
        errors=("INSTANCE_NOT_EXIST",),
    ),
    Action(
        "UpdateRepository",
        "Repositories",
        "Changes a repository's type, texts or tag immutability.",
        (
            INSTANCE_ID,
            REPO_ID,
            REPO_NAMESPACE_NAME,
            REPO_NAME,
            Param(
                "RepoType",
                STRING,
                "The repository type.",
                required=True,
                choices=("PUBLIC", "PRIVATE"),
            ),
            Param(
                "Summary", STRING, "A one-line summary.", required=True, max_length=100
            ),
            DETAIL,
            TAG_IMMUTABILITY,
        ),
        one_of=_REPO_BY_NAME,
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST"),
    ),
    Action(
        "DeleteRepository",
        "Repositories",
        "Deletes a repository: its tags in the registry, then its build rules.",
        (INSTANCE_ID, REPO_ID, REPO_NAMESPACE_NAME, REPO_NAME),
        one_of=_REPO_BY_NAME,
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST", "TAG_NOT_DELETABLE"),
        uses_registry=True,
    ),
)

_TAG = Param(
    "Tag",
    STRING,
    "The tag.",
    required=True,
    max_length=128,
    pattern=TAG_RE,
    pattern_doc="a valid tag (letters, digits, `_` `.` `-`, not starting with "
    "`.` or `-`)",
)
_REPO_ID_REQUIRED = Param(
    "RepoId", STRING, "The repository id (`crr-...`).", required=True, max_length=64
)
_TAGS = (
    Action(
        "ListRepoTag",
        "Tags",
        "Lists a repository's tags, most recently pushed first.",
        (INSTANCE_ID, _REPO_ID_REQUIRED, PAGE_NO, PAGE_SIZE, MAX_RESULTS, NEXT_TOKEN),
        (
            *PAGE_FIELDS,
            *TOKEN_FIELDS,
            Field("TotalCount", STRING, "Number of tags."),
            Field("Images", ARRAY, "The tags.", _image_fields(STRING)),
        ),
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST"),
        uses_registry=True,
    ),
    Action(
        "GetRepoTag",
        "Tags",
        "Describes one tag.",
        (INSTANCE_ID, _REPO_ID_REQUIRED, _TAG),
        _image_fields(LONG),
        sdk_method="GET",
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST", "TAG_NOT_EXIST"),
        uses_registry=True,
    ),
    Action(
        "DeleteRepoTag",
        "Tags",
        "Deletes a tag (the manifest stays until garbage collection).",
        (INSTANCE_ID, _REPO_ID_REQUIRED, _TAG),
        errors=(
            "INSTANCE_NOT_EXIST",
            "REPO_NOT_EXIST",
            "TAG_NOT_EXIST",
            "TAG_IMMUTABLE",
        ),
        uses_registry=True,
    ),
    Action(
        "GetAuthorizationToken",
        "Tags",
        "Issues a temporary password for `docker login` to the instance.",
        (
            INSTANCE_ID,
            Param(
                "ExpiresInHours",
                INTEGER,
                "How long the password is valid.",
                default=1,
                minimum=1,
                maximum=24,
            ),
        ),
        (
            Field("TempUsername", STRING, "User name for `docker login`."),
            Field("AuthorizationToken", STRING, "Password for `docker login`."),
            Field("ExpireTime", LONG, "When the password expires, epoch ms."),
        ),
        errors=("INSTANCE_NOT_EXIST",),
    ),
)

_TASK_LIST_PARAMS = (
    INSTANCE_ID,
    Param("RepoId", STRING, "Only tasks building this repository.", max_length=64),
    Param("TaskStatus", STRING, "Only tasks in this status.", choices=TASK_STATUSES),
    Param(
        "StartTime",
        INTEGER,
        "Only tasks created at or after this time, epoch seconds.",
        minimum=0,
        maximum=2**40,
    ),
    Param(
        "EndTime",
        INTEGER,
        "Only tasks created before this time, epoch seconds.",
        minimum=0,
        maximum=2**40,
    ),
    PAGE_NO,
    PAGE_SIZE,
)
_BUILDS = (
    Action(
        "CreateArtifactBuildRule",
        "Artifact builds",
        "Creates a rule: every image pushed into its scope is accelerated.",
        (
            INSTANCE_ID,
            Param(
                "ArtifactType",
                STRING,
                "The kind of artifact the rule builds.",
                required=True,
                choices=("ACCELERATED_IMAGE",),
            ),
            Param(
                "ScopeType",
                STRING,
                SCOPE_TYPE.doc,
                required=True,
                choices=SCOPE_TYPE.choices,
            ),
            Param("ScopeId", STRING, SCOPE_ID.doc, required=True, max_length=64),
            RULE_PARAMETERS,
        ),
        (Field("BuildRuleId", STRING, "The new rule's id, `crabr-...`."),),
        errors=(
            "INSTANCE_NOT_EXIST",
            "REPO_NOT_EXIST",
            "NAMESPACE_NOT_EXIST",
            "ARTIFACT_BUILD_RULE_ALREADY_EXIST",
        ),
        notes="`Parameters.ImageIndexOnly=true` is refused with InvalidParameter.",
    ),
    Action(
        "GetArtifactBuildRule",
        "Artifact builds",
        "Describes a rule, by id or by artifact type and scope.",
        (INSTANCE_ID, BUILD_RULE_ID, ARTIFACT_TYPE, SCOPE_TYPE, SCOPE_ID),
        BUILD_RULE_FIELDS,
        one_of=(("BuildRuleId",), ("ArtifactType", "ScopeType", "ScopeId")),
        sdk_method="GET",
        errors=("INSTANCE_NOT_EXIST", "ARTIFACT_BUILD_RULE_NOT_EXIST"),
    ),
    Action(
        "ListArtifactBuildRule",
        "Artifact builds",
        "Lists rules, oldest first.",
        (INSTANCE_ID, SCOPE_TYPE, SCOPE_ID, PAGE_NO, PAGE_SIZE),
        (
            *PAGE_FIELDS,
            Field("TotalCount", INTEGER, "Number of matching rules."),
            Field("BuildRules", ARRAY, "The rules.", BUILD_RULE_FIELDS),
        ),
        extension=True,
        errors=("INSTANCE_NOT_EXIST",),
    ),
    Action(
        "UpdateArtifactBuildRule",
        "Artifact builds",
        "Replaces a rule's parameters; tasks already created keep theirs.",
        (
            INSTANCE_ID,
            Param(
                "BuildRuleId", STRING, BUILD_RULE_ID.doc, required=True, max_length=64
            ),
            Param(
                "Parameters",
                OBJECT,
                RULE_PARAMETERS.doc,
                required=True,
                fields=RULE_PARAMETERS.fields,
            ),
        ),
        extension=True,
        errors=("INSTANCE_NOT_EXIST", "ARTIFACT_BUILD_RULE_NOT_EXIST"),
    ),
    Action(
        "DeleteArtifactBuildRule",
        "Artifact builds",
        "Deletes a rule; its tasks are kept.",
        (
            INSTANCE_ID,
            Param(
                "BuildRuleId", STRING, BUILD_RULE_ID.doc, required=True, max_length=64
            ),
        ),
        extension=True,
        errors=("INSTANCE_NOT_EXIST", "ARTIFACT_BUILD_RULE_NOT_EXIST"),
    ),
    Action(
        "CreateArtifactBuildTask",
        "Artifact builds",
        "Queues a build of one tag now, with the parameters of the rule that "
        "covers the repository (or the defaults).",
        (
            INSTANCE_ID,
            _REPO_ID_REQUIRED,
            _TAG,
            Param(
                "ArtifactBuildType",
                STRING,
                "What to build.",
                choices=BUILD_TYPES,
                default="IMAGE_TO_ACCELERATED_IMAGE",
            ),
        ),
        (Field("BuildTaskId", STRING, "The new task's id, `i2a-...`."),),
        extension=True,
        errors=("INSTANCE_NOT_EXIST", "REPO_NOT_EXIST", "TAG_NOT_EXIST"),
        uses_registry=True,
    ),
    Action(
        "GetArtifactBuildTask",
        "Artifact builds",
        "Describes a build task.",
        (INSTANCE_ID, BUILD_TASK_ID),
        BUILD_TASK_FIELDS,
        sdk_method="GET",
        errors=("INSTANCE_NOT_EXIST", "ARTIFACT_BUILD_TASK_NOT_EXIST"),
    ),
    Action(
        "ListArtifactBuildTask",
        "Artifact builds",
        "Lists build tasks, newest first.",
        _TASK_LIST_PARAMS,
        (
            *PAGE_FIELDS,
            Field("TotalCount", INTEGER, "Number of matching tasks."),
            Field(
                "BuildTasks",
                ARRAY,
                "The tasks, each shaped like GetArtifactBuildTask's answer.",
                BUILD_TASK_FIELDS,
            ),
        ),
        extension=True,
        errors=("INSTANCE_NOT_EXIST",),
    ),
    Action(
        "ListArtifactBuildTaskLog",
        "Artifact builds",
        "Pages through a task's log, oldest line first.",
        (
            INSTANCE_ID,
            BUILD_TASK_ID,
            Param(
                "Page",
                INTEGER,
                "The page number, from 1.",
                required=True,
                minimum=1,
                maximum=10**6,
            ),
            Param(
                "PageSize",
                INTEGER,
                "Lines per page.",
                required=True,
                minimum=1,
                maximum=100,
            ),
        ),
        (
            Field("TotalCount", INTEGER, "Number of log lines."),
            Field(
                "BuildTaskLogs",
                ARRAY,
                "The lines.",
                (
                    Field("LineNumber", INTEGER, "Line number, from 1."),
                    Field("Message", STRING, "The line."),
                ),
            ),
        ),
        sdk_method="GET",
        errors=("INSTANCE_NOT_EXIST", "ARTIFACT_BUILD_TASK_NOT_EXIST"),
    ),
    Action(
        "CancelArtifactBuildTask",
        "Artifact builds",
        "Cancels a PENDING or BUILDING task.",
        (INSTANCE_ID, BUILD_TASK_ID),
        errors=(
            "INSTANCE_NOT_EXIST",
            "ARTIFACT_BUILD_TASK_NOT_EXIST",
            "ARTIFACT_BUILD_TASK_STATUS_INVALID",
        ),
    ),
)

ACTIONS: dict[str, Action] = {
    a.name: a for a in (*_INSTANCES, *_NAMESPACES, *_REPOSITORIES, *_TAGS, *_BUILDS)
}

COMMON_FIELDS = (
    Field("RequestId", STRING, "Unique id of the request (an upper-case UUID)."),
    Field("Code", STRING, "`success`, or the in-band failure code."),
    Field("IsSuccess", BOOLEAN, "`true`, or `false` with a failure code."),
)
