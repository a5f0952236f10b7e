// The product page's TypeScript snippets (shared/seed/tasks-page.txt), in its order, each as the
// page writes it between `// --- <name>` and `// --- end`. Only what the page leaves as a
// placeholder differs: the key comes from THEAZO_API_KEY (and the base URL, by the client's
// default, from THEAZO_BASE_URL), a task id is a real one (`taskId`), and the webhook goes to
// the test's receiver (THEAZO_SNIPPET_WEBHOOK). test/snippets.test.ts puts the placeholders back
// and checks each snippet against the README and the page, and runs this file.

// --- submit-task.ts
import { Theazo } from 'theazo'

const theazo = new Theazo({ apiKey: process.env.THEAZO_API_KEY })
const session = await theazo.sessions.forUser('user_123')

// Submit a task — returns immediately
const task = await session.tasks.submit({
  agent: 'researcher',
  input: { query: 'analyze competitor pricing for Q2 2025' },
  priority: 'high',
})

console.log(task.taskId)  // 'task_abc123'
console.log(task.status)  // 'queued'
// --- end

const taskId = task.taskId

{
// --- poll-task.ts
const task = await session.tasks.get(taskId)

console.log(task.status)    // 'queued' | 'running' | 'completed' | 'failed' | 'cancelled'
console.log(task.progress)  // 0.65 (65% complete, if agent reports progress)
console.log(task.message)   // 'Processing 45 of 200 items...'

if (task.status === 'completed') {
  console.log(task.output)  // Agent's final output
  console.log(task.cost)    // { amount: 234, currency: 'usd' }
}
// --- end
}

{
// --- wait-task.ts
// Block until completed or 5 minutes, whichever comes first
const result = await session.tasks.wait(taskId, {
  timeout: '5m',
})

if (result.status === 'completed') {
  console.log(result.output)
} else {
  console.log('Task still running after timeout')
}
// --- end
console.log(`wait: ${result.status}`)
}

{
// --- webhook
const task = await session.tasks.submit({
  agent: 'data_processor',
  input: { dataset: 'customers_q2.csv' },
  webhook: process.env.THEAZO_SNIPPET_WEBHOOK,
})
// When the task completes, Theazo POSTs:
// { taskId: 'task_abc', status: 'completed', output: '...', cost: { amount: 89, currency: 'usd' } }
// --- end
console.log(`webhook task: ${task.taskId}`)
}

{
// --- list-tasks
// List all tasks in a session
const all = await session.tasks.list()

// Filter by status
const running = await session.tasks.list({ status: 'running' })
const failed  = await session.tasks.list({ status: 'failed' })
// --- end
console.log(`listed: ${all.length} all, ${running.length} running, ${failed.length} failed`)
}

{
// A task still running, for the page's cancel snippet (the page's task has completed by now).
const taskId = (await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } })).taskId

// --- cancel-task
await session.tasks.cancel(taskId)

const task = await session.tasks.get(taskId)
console.log(task.status) // 'cancelled'
// --- end
}
