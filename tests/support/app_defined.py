"""An application that defines its own collation and function, as Anki does
(collation `unicase`) and as a blog engine might (`slugify()` in an index).
Its database cannot be fully read without them: SQLite's own tools (sqlite3,
sqldiff) and lifeboat do not have them.

    app_defined.py create PATH   make the database (Anki-like schema, small)
    app_defined.py damage PATH   a bad DELETE, through the application
    app_defined.py dump PATH     the whole database as SQL, read through the
                                 application's own definitions (what
                                 `sqlite3 PATH .dump` would print if it could)
"""

import sqlite3
import sys
import unicodedata


def unicase(a, b):
    a, b = a.casefold(), b.casefold()
    return (a > b) - (a < b)


def slugify(s):
    if s is None:
        return None
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in s.lower()).split())


def connect(path):
    conn = sqlite3.connect(path)
    conn.create_collation("unicase", unicase)
    conn.create_function("slugify", 1, slugify, deterministic=True)
    return conn


SCHEMA = """
PRAGMA user_version = 18;
PRAGMA application_id = 1095656779;
CREATE TABLE notes(id INTEGER PRIMARY KEY, mid INTEGER NOT NULL, sfld TEXT NOT NULL, flds TEXT);
CREATE INDEX notes_sfld ON notes(sfld COLLATE unicase);
CREATE TABLE tags(tag TEXT NOT NULL PRIMARY KEY COLLATE unicase, usn INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE decks(id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE unicase);
CREATE UNIQUE INDEX idx_decks_name ON decks(name);
CREATE TABLE cards(id INTEGER PRIMARY KEY, nid INTEGER NOT NULL REFERENCES notes(id), did INTEGER NOT NULL REFERENCES decks(id));
CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);
CREATE INDEX posts_slug ON posts(slugify(title));
"""


def create(path):
    conn = connect(path)
    conn.executescript(SCHEMA)
    words = ["Émile", "apple", "Banana", "cherry", "Date", "éclair", "Fig", "grape"]
    conn.executemany(
        "INSERT INTO decks(id, name) VALUES (?, ?)",
        [(1, "Default"), (2, "Français"), (3, "ÜBER deck")],
    )
    for i in range(120):
        w = words[i % len(words)]
        conn.execute(
            "INSERT INTO notes(id, mid, sfld, flds) VALUES (?, ?, ?, ?)",
            (i + 1, 1 + i % 3, f"{w} {i}", f"{w} {i}\x1fback {i}"),
        )
        conn.execute(
            "INSERT INTO cards(nid, did) VALUES (?, ?)", (i + 1, 1 + i % 3)
        )
        conn.execute(
            "INSERT INTO posts(title, body) VALUES (?, ?)",
            (f"{w.upper()} — Post Nº {i}", "body " * (i % 7)),
        )
    conn.executemany(
        "INSERT INTO tags VALUES (?, 0)", [(f"{w}-tag-{i}",) for i in range(40) for w in words[:2]]
    )
    conn.commit()
    conn.close()


def damage(path):
    conn = connect(path)
    conn.execute("DELETE FROM notes WHERE id % 2 = 0")
    conn.execute("DELETE FROM tags WHERE tag LIKE 'apple%'")
    conn.execute("UPDATE posts SET title = 'oops'")
    conn.commit()
    conn.close()


def dump(path):
    conn = connect(path)
    for line in conn.iterdump():
        print(line)
    conn.close()


if __name__ == "__main__":
    {"create": create, "damage": damage, "dump": dump}[sys.argv[1]](sys.argv[2])
