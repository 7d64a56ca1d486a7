-- A priority per task (1 = high, 3 = low), backfilled from what is known:
-- finished tasks are low, open tasks with a due date are high, the rest
-- normal. High-priority tasks also get the `urgent` tag, so this step adds
-- rows to existing tables (row-count checks must tolerate more, not fewer).
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 2
    CHECK (priority BETWEEN 1 AND 3);

UPDATE tasks SET priority = CASE
    WHEN done = 1 THEN 3
    WHEN due IS NOT NULL THEN 1
    ELSE 2
END;

INSERT OR IGNORE INTO tags (name) VALUES ('urgent');
INSERT OR IGNORE INTO task_tags (task_id, tag_id)
    SELECT tasks.id, tags.id FROM tasks, tags
    WHERE tags.name = 'urgent' AND tasks.priority = 1;

CREATE INDEX open_tasks_by_priority ON tasks(priority, due) WHERE done = 0;
