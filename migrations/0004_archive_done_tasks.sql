-- lifeboat: rewrites tasks
-- lifeboat: rewrites task_tags
-- Finished tasks move out of `tasks` into `archived_tasks`, with their tags
-- folded into a text column. `tasks` and `task_tags` lose rows here, which is
-- why the header above declares them rewritten: a restore that migrates an
-- older snapshot through this step must not call the smaller counts a loss.
CREATE TABLE archived_tasks (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    tags        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    archived_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

INSERT INTO archived_tasks (id, project_id, title, priority, tags, created_at)
    SELECT t.id, t.project_id, t.title, t.priority,
           coalesce((SELECT group_concat(g.name, ',') FROM task_tags tt
                     JOIN tags g ON g.id = tt.tag_id WHERE tt.task_id = t.id), ''),
           t.created_at
    FROM tasks t WHERE t.done = 1;

DELETE FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE done = 1);
DELETE FROM tasks WHERE done = 1;

CREATE INDEX archived_tasks_by_project ON archived_tasks(project_id);
