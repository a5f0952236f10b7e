/**
 * The wire types of the Theazo API, generated from the server's /openapi.json by
 * openapi-typescript. Do not edit: `npm run generate` writes this file again, and a test fails
 * when it no longer matches what the server serves.
 *
 * @module
 */

export interface paths {
    "/v1/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Get or create the session of a user */
        post: operations["create_session_v1_sessions_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get Session */
        get: operations["get_session_v1_sessions__session_id__get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Change a session's limits */
        patch: operations["patch_session_v1_sessions__session_id__patch"];
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List tasks, newest first */
        get: operations["list_tasks_v1_sessions__session_id__tasks_get"];
        put?: never;
        /** Submit a task */
        post: operations["submit_task_v1_sessions__session_id__tasks_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Submit up to 1,000 tasks, all or nothing */
        post: operations["submit_batch_v1_sessions__session_id__tasks_batch_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get Task */
        get: operations["get_task_v1_sessions__session_id__tasks__task_id__get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/wait": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Long poll: answer when the task ends or the timeout passes */
        get: operations["wait_task_v1_sessions__session_id__tasks__task_id__wait_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Cancel Task */
        post: operations["cancel_task_v1_sessions__session_id__tasks__task_id__cancel_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The task's webhook deliveries and every attempt */
        get: operations["list_deliveries_v1_sessions__session_id__tasks__task_id__deliveries_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/deliveries/redeliver": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Send a finished task's final webhook again */
        post: operations["redeliver_v1_sessions__session_id__tasks__task_id__deliveries_redeliver_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhook-secret": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The project's webhook signing secret */
        get: operations["get_webhook_secret_v1_webhook_secret_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhook-secret/rotate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Make a new webhook secret; the old one keeps signing for the overlap window */
        post: operations["rotate_webhook_secret_v1_webhook_secret_rotate_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/agents": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List Agents */
        get: operations["list_agents_v1_agents_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The task's events, live (Server-Sent Events) */
        get: operations["task_events_v1_sessions__session_id__tasks__task_id__events_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The status and progress events of every task of the session, live */
        get: operations["session_events_v1_sessions__session_id__events_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tasks/{task_id}/logs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What the agent wrote to stdout and stderr, in order */
        get: operations["task_logs_v1_sessions__session_id__tasks__task_id__logs_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A short-lived token that reads this session's streams and logs (for a browser) */
        post: operations["mint_token_v1_sessions__session_id__tokens_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Healthz */
        get: operations["healthz_healthz_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** AgentList */
        AgentList: {
            /** Data */
            data: components["schemas"]["AgentOut"][];
        };
        /** AgentOut */
        AgentOut: {
            /** Name */
            name: string;
            /** Description */
            description: string;
            /** Inputschema */
            inputSchema: {
                [key: string]: unknown;
            } | null;
            /** Outputschema */
            outputSchema?: {
                [key: string]: unknown;
            } | null;
        };
        /** BatchBody */
        BatchBody: {
            /** Tasks */
            tasks: components["schemas"]["SubmitBody"][];
        };
        /** CostOut */
        CostOut: {
            /**
             * Amount
             * @description Minor units (cents), rounded half up from the exact sum.
             */
            amount: number;
            /** Currency */
            currency: string;
        };
        /** DeliveryAttemptOut */
        DeliveryAttemptOut: {
            /** Attemptedat */
            attemptedAt: string;
            /** Durationms */
            durationMs: number;
            /**
             * Httpstatus
             * @description Null when no answer came.
             */
            httpStatus: number | null;
            /**
             * Error
             * @description Why no answer came, or why it did not count.
             */
            error: string | null;
        };
        /** DeliveryList */
        DeliveryList: {
            /** Data */
            data: components["schemas"]["DeliveryOut"][];
        };
        /** DeliveryOut */
        DeliveryOut: {
            /**
             * Deliveryid
             * @description The webhook-id header: the same on every retry.
             */
            deliveryId: string;
            /**
             * Event
             * @enum {string}
             */
            event: "completed" | "started" | "progress";
            /** Url */
            url: string;
            /**
             * Status
             * @enum {string}
             */
            status: "pending" | "delivered" | "failed";
            /**
             * Attempts
             * @description Attempts started so far.
             */
            attempts: number;
            /**
             * Nextattemptat
             * @description When pending: when it is tried next.
             */
            nextAttemptAt: string | null;
            /** Createdat */
            createdAt: string;
            /** Deliveredat */
            deliveredAt: string | null;
            /** History */
            history: components["schemas"]["DeliveryAttemptOut"][];
        };
        /** ErrorOut */
        ErrorOut: {
            /** Code */
            code: string;
            /** Message */
            message: string;
        };
        /** HTTPValidationError */
        HTTPValidationError: {
            /** Detail */
            detail?: components["schemas"]["ValidationError"][];
        };
        /** Health */
        Health: {
            /**
             * Status
             * @constant
             */
            status: "ok";
            /**
             * Waits
             * @description Long polls this node holds open right now.
             */
            waits: number;
            sandbox: components["schemas"]["SandboxHealth"];
        };
        /** LimitsBody */
        LimitsBody: {
            /** Maxrunning */
            maxRunning?: number | null;
            /** Maxqueued */
            maxQueued?: number | null;
            /**
             * Budget
             * @description Minor units (cents); null removes the budget.
             */
            budget?: number | null;
        };
        /** LimitsOut */
        LimitsOut: {
            /** Maxrunning */
            maxRunning: number;
            /** Maxqueued */
            maxQueued: number;
            /** Budget */
            budget: number | null;
        };
        /** LogLineOut */
        LogLineOut: {
            /**
             * Seq
             * @description The line's event id: increasing within the task, with gaps.
             */
            seq: number;
            /**
             * Stream
             * @enum {string}
             */
            stream: "stdout" | "stderr";
            /**
             * Text
             * @description One line, without its newline.
             */
            text: string;
            /**
             * At
             * @description When the server read it.
             */
            at: string;
        };
        /** LogPage */
        LogPage: {
            /** Data */
            data: components["schemas"]["LogLineOut"][];
            /**
             * Nextcursor
             * @description Pass as ?after= for the lines stored after this page; null when none are (yet: a running task's log grows).
             */
            nextCursor: string | null;
        };
        /** NetworkOut */
        NetworkOut: {
            /**
             * Sentbytes
             * @description Bytes its sandbox sent through the egress proxy.
             */
            sentBytes: number;
            /**
             * Receivedbytes
             * @description Bytes its sandbox received through it.
             */
            receivedBytes: number;
            /**
             * Connections
             * @description Connections its sandbox opened through it.
             */
            connections: number;
        };
        /** PreviousSecretOut */
        PreviousSecretOut: {
            /** Secret */
            secret: string;
            /**
             * Expiresat
             * @description Until then it signs too, after the current one.
             */
            expiresAt: string;
        };
        /**
         * Problem
         * @description An RFC 9457 problem: every error answer has this shape.
         */
        Problem: {
            /** Type */
            type: string;
            /** Title */
            title: string;
            /** Status */
            status: number;
            /** Detail */
            detail: string;
            /**
             * Code
             * @description Stable and machine-readable; switch on this, not on text.
             */
            code: string;
            /**
             * Field
             * @description The request field at fault, if one.
             */
            field?: string | null;
            /** Errors */
            errors?: {
                [key: string]: string;
            }[] | null;
        };
        /** SandboxHealth */
        SandboxHealth: {
            /**
             * Tier
             * @description The isolation in force for this node's sandboxes (docs/operations.md).
             * @enum {string}
             */
            tier: "process" | "namespaces" | "landlock" | "cgroup";
            /**
             * Network
             * @enum {string}
             */
            network: "none" | "egress" | "host";
            /**
             * Landlockabi
             * @description 0 when sandboxes run without Landlock.
             */
            landlockAbi: number;
            /**
             * Cgroup
             * @description null: no cgroup per sandbox.
             */
            cgroup: ("v1" | "v2") | null;
        };
        /** SessionCreate */
        SessionCreate: {
            /** Userid */
            userId: string;
        };
        /** SessionOut */
        SessionOut: {
            /** Sessionid */
            sessionId: string;
            /** Userid */
            userId: string;
            /** Createdat */
            createdAt: string;
            limits: components["schemas"]["LimitsOut"];
            usage: components["schemas"]["UsageOut"];
        };
        /** SessionPatch */
        SessionPatch: {
            limits: components["schemas"]["LimitsBody"];
        };
        /** StreamTokenBody */
        StreamTokenBody: {
            /**
             * Ttl
             * @description How long the token opens streams: "15m" (the default) to "24h".
             */
            ttl?: string | number | null;
        };
        /** StreamTokenOut */
        StreamTokenOut: {
            /**
             * Token
             * @description Pass as ?token= to this session's event streams and logs.
             */
            token: string;
            /** Sessionid */
            sessionId: string;
            /** Expiresat */
            expiresAt: string;
        };
        /** SubmitBody */
        SubmitBody: {
            /** Agent */
            agent: string;
            /**
             * Input
             * @description Any JSON value; the agent receives it as is.
             */
            input: unknown;
            /**
             * Priority
             * @default normal
             * @enum {string}
             */
            priority?: "high" | "normal" | "low";
            /** Webhook */
            webhook?: string | null;
            /**
             * Webhookevents
             * @description "completed" means every terminal state; "started" and "progress" opt in.
             */
            webhookEvents?: ("completed" | "started" | "progress")[];
            /**
             * Timeout
             * @description Wall-clock limit: "1500ms", "30s", "5m", "1h" or seconds.
             */
            timeout?: string | number | null;
            /** Metadata */
            metadata?: {
                [key: string]: string;
            } | null;
            /**
             * Retries
             * @description Automatic re-runs after the task's worker was lost.
             * @default 0
             */
            retries?: number;
            /**
             * Idempotencykey
             * @description In a batch, what the Idempotency-Key header is alone.
             */
            idempotencyKey?: string | null;
        };
        /** TaskBatch */
        TaskBatch: {
            /** Data */
            data: components["schemas"]["TaskOut"][];
        };
        /** TaskList */
        TaskList: {
            /** Data */
            data: components["schemas"]["TaskOut"][];
            /** Nextcursor */
            nextCursor: string | null;
        };
        /** TaskOut */
        TaskOut: {
            /** Taskid */
            taskId: string;
            /** Sessionid */
            sessionId: string;
            /** Agent */
            agent: string;
            /**
             * Status
             * @enum {string}
             */
            status: "queued" | "running" | "completed" | "failed" | "cancelled";
            /**
             * Priority
             * @enum {string}
             */
            priority: "high" | "normal" | "low";
            /** Input */
            input: unknown;
            /** Progress */
            progress: number | null;
            /** Message */
            message: string | null;
            /** Output */
            output: unknown;
            error: components["schemas"]["ErrorOut"] | null;
            cost: components["schemas"]["CostOut"];
            /** @description Model tokens its calls through the model gateway used (docs/agents.md). */
            usage: components["schemas"]["TaskUsageOut"];
            /** Webhook */
            webhook: string | null;
            /** Webhookevents */
            webhookEvents: string[];
            /** Metadata */
            metadata: {
                [key: string]: string;
            };
            /**
             * Timeout
             * @description Seconds.
             */
            timeout: number;
            /**
             * Attempt
             * @description 1 for the first run; 0 while never started.
             */
            attempt: number;
            /** Retries */
            retries: number;
            /**
             * Queueposition
             * @description For a queued task: how many tasks start before it (0 = next).
             */
            queuePosition: number | null;
            /** Createdat */
            createdAt: string;
            /** Startedat */
            startedAt: string | null;
            /** Completedat */
            completedAt: string | null;
        };
        /** TaskUsageOut */
        TaskUsageOut: {
            /** @description Model tokens of all its model calls. */
            tokens: components["schemas"]["TokensOut"];
            /**
             * Bymodel
             * @description The same, by model.
             */
            byModel: {
                [key: string]: components["schemas"]["TokensOut"];
            };
            /** @description Its sandbox's traffic out, over all its attempts (docs/api.md, Usage). */
            network: components["schemas"]["NetworkOut"];
        };
        /** TokensOut */
        TokensOut: {
            /**
             * Input
             * @description Input (prompt) tokens, cached ones included.
             */
            input: number;
            /**
             * Output
             * @description Generated tokens.
             */
            output: number;
            /**
             * Cached
             * @description The input tokens read from the provider's prompt cache.
             */
            cached: number;
        };
        /** UsageOut */
        UsageOut: {
            /**
             * Tasks
             * @description Tasks ever submitted in the session.
             */
            tasks: number;
            /** Queued */
            queued: number;
            /** Running */
            running: number;
            cost: components["schemas"]["CostOut"];
            /** @description Model tokens of all its tasks. */
            tokens: components["schemas"]["TokensOut"];
        };
        /** ValidationError */
        ValidationError: {
            /** Location */
            loc: (string | number)[];
            /** Message */
            msg: string;
            /** Error Type */
            type: string;
            /** Input */
            input?: unknown;
            /** Context */
            ctx?: Record<string, never>;
        };
        /** WebhookSecretOut */
        WebhookSecretOut: {
            /**
             * Secret
             * @description whsec_…: verify webhooks with it (Standard Webhooks).
             */
            secret: string;
            /** Createdat */
            createdAt: string;
            /**
             * Previous
             * @description Secrets rotated out that still sign, during their overlap window.
             */
            previous: components["schemas"]["PreviousSecretOut"][];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    create_session_v1_sessions_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionCreate"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionOut"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Body or input too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_session_v1_sessions__session_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    patch_session_v1_sessions__session_id__patch: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionPatch"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionOut"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Body or input too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_tasks_v1_sessions__session_id__tasks_get: {
        parameters: {
            query?: {
                /** @description One status, or several separated by commas */
                status?: string | null;
                limit?: number;
                /** @description `nextCursor` of the previous page */
                cursor?: string | null;
            };
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskList"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    submit_task_v1_sessions__session_id__tasks_post: {
        parameters: {
            query?: never;
            header?: {
                "idempotency-key"?: string | null;
                /** @description `wait=N` (RFC 7240): hold the answer up to N seconds (capped like a long poll) for the task to end: 200 with the finished task, else 202 as usual. */
                prefer?: string | null;
            };
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SubmitBody"];
            };
        };
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskOut"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description The session's budget is spent */
            402: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Body or input too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A session limit is reached */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    submit_batch_v1_sessions__session_id__tasks_batch_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["BatchBody"];
            };
        };
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskBatch"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description The session's budget is spent */
            402: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Body or input too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A session limit is reached */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_task_v1_sessions__session_id__tasks__task_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    wait_task_v1_sessions__session_id__tasks__task_id__wait_get: {
        parameters: {
            query?: {
                /** @description "1500ms", "30s", "5m", "1h" or seconds; capped at 60s by default */
                timeout?: string | null;
            };
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    cancel_task_v1_sessions__session_id__tasks__task_id__cancel_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description The task's state does not allow this */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    list_deliveries_v1_sessions__session_id__tasks__task_id__deliveries_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeliveryList"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    redeliver_v1_sessions__session_id__tasks__task_id__deliveries_redeliver_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeliveryOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description The task's state does not allow this */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    get_webhook_secret_v1_webhook_secret_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookSecretOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    rotate_webhook_secret_v1_webhook_secret_rotate_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookSecretOut"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_agents_v1_agents_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AgentList"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    task_events_v1_sessions__session_id__tasks__task_id__events_get: {
        parameters: {
            query?: {
                /** @description Resume after this event id (the `id:` of the last event received); the same as the Last-Event-ID header, which it overrides. */
                after?: string | null;
                /** @description A stream token (POST /v1/sessions/{sessionId}/tokens), for a browser's EventSource, which cannot send an Authorization header. */
                token?: string | null;
            };
            header?: {
                /** @description Sent by EventSource when it reconnects: resume after this id. */
                "Last-Event-ID"?: string | null;
            };
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Server-Sent Events (docs/api.md, Events) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description The task ended before the given id: nothing will follow. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
        };
    };
    session_events_v1_sessions__session_id__events_get: {
        parameters: {
            query?: {
                /** @description Resume after this event id (the `id:` of the last event received); the same as the Last-Event-ID header, which it overrides. */
                after?: string | null;
                /** @description A stream token (POST /v1/sessions/{sessionId}/tokens), for a browser's EventSource, which cannot send an Authorization header. */
                token?: string | null;
            };
            header?: {
                /** @description Sent by EventSource when it reconnects: resume after this id. */
                "Last-Event-ID"?: string | null;
            };
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Server-Sent Events (docs/api.md, Events) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description The task ended before the given id: nothing will follow. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "text/event-stream": components["schemas"]["Problem"];
                };
            };
        };
    };
    task_logs_v1_sessions__session_id__tasks__task_id__logs_get: {
        parameters: {
            query?: {
                /** @description A line's `seq`, or the previous page's `nextCursor` */
                after?: string | null;
                limit?: number;
                /** @description A stream token (POST /v1/sessions/{sessionId}/tokens), for a browser's EventSource, which cannot send an Authorization header. */
                token?: string | null;
            };
            header?: never;
            path: {
                session_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LogPage"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    mint_token_v1_sessions__session_id__tokens_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["StreamTokenBody"] | null;
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StreamTokenOut"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description No key, or an unknown one */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Unknown, or not in the caller's project */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Body or input too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description A field is wrong; the problem names it */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    healthz_healthz_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
}
