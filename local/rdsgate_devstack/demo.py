"""The local stack's demo: a small shop schema on each server, its IAM user, and the connection definitions.

Tables ``customers``, ``products`` and ``orders`` hold a few rows of varied types
(integers, numeric, text, booleans, dates, timestamps, uuid, json, arrays or SET,
enums, binary), so every value encoding can be seen from a query.
"""

from __future__ import annotations

from typing import Any

DATABASE = "demo"
IAM_USER = "demo_app"
# An RDS-style endpoint: `demo` dials localhost (as through a tunnel) and signs its tokens for this name.
RDS_ENDPOINT = "demo.c0ffee.us-east-1.rds.amazonaws.com"
RESOURCE_ID = "db-RDSGATELOCALDEMO0000000001"
# Who may use the demo connections once governance checks `allowed_principals`: the local account only.
ALLOWED_PRINCIPALS = ["arn:aws:iam::000000000000:*", "arn:aws:sts::000000000000:*"]

POSTGRES_SCHEMA = [
    "CREATE TYPE order_status AS ENUM ('placed', 'shipped', 'delivered', 'cancelled')",
    """CREATE TABLE customers (
        id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, country char(2),
        vip boolean NOT NULL DEFAULT false, signed_up timestamptz NOT NULL)""",
    """CREATE TABLE products (
        id integer PRIMARY KEY, sku uuid NOT NULL, name text NOT NULL, price numeric(10,2) NOT NULL,
        weight_kg double precision, tags text[], attributes jsonb, thumbnail bytea)""",
    """CREATE TABLE orders (
        id bigserial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, product_id integer
        REFERENCES products, quantity smallint NOT NULL, total numeric(12,2) NOT NULL, status order_status NOT NULL,
        placed_at timestamptz NOT NULL, deliver_on date, delivery_window interval, note text)""",
    """INSERT INTO customers (name, email, country, vip, signed_up) VALUES
        ('Ada Lovelace', 'ada@example.com', 'GB', true, '2024-01-15T09:30:00Z'),
        ('Grace Hopper', 'grace@example.com', 'US', false, '2024-03-02T14:00:00Z'),
        ('Katherine Johnson', 'katherine@example.com', 'US', true, '2025-06-21T08:15:00Z')""",
    """INSERT INTO products VALUES
        (1, 'c56a4180-65aa-42ec-a945-5fd21dec0538', 'Mechanical keyboard', 129.90, 1.2,
         ARRAY['input', 'usb'], '{"layout": "ISO", "switches": "brown"}', '\\x89504e47'),
        (2, '2f1e8f6a-0c3b-4d7e-9b1a-6f0e2d4c8a11', 'Notebook', 4.50, 0.25, ARRAY['paper'], '{"pages": 120}', NULL),
        (3, '9b7c2f40-1e2d-4c3b-8a9f-0d1e2f3a4b5c', 'Fountain pen', 89.00, 0.03, '{}', NULL, NULL)""",
    """INSERT INTO orders
        (customer_id, product_id, quantity, total, status, placed_at, deliver_on, delivery_window, note) VALUES
        (1, 1, 1, 129.90, 'delivered', '2026-01-05T10:00:00Z', '2026-01-08', '2 days 4 hours', NULL),
        (2, 2, 10, 45.00, 'shipped', '2026-02-11T16:45:00Z', '2026-02-14', '3 days', 'leave at the door'),
        (3, 3, 1, 89.00, 'placed', '2026-03-01T08:05:00Z', NULL, NULL, NULL)""",
]

MYSQL_SCHEMA = [
    """CREATE TABLE customers (
        id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) UNIQUE, country char(2),
        vip bool NOT NULL DEFAULT false, signed_up datetime NOT NULL)""",
    """CREATE TABLE products (
        id int PRIMARY KEY, sku char(36) NOT NULL, name varchar(100) NOT NULL, price decimal(10,2) NOT NULL,
        weight_kg double, tags set('input', 'usb', 'paper'), attributes json, thumbnail varbinary(64))""",
    """CREATE TABLE orders (
        id bigint AUTO_INCREMENT PRIMARY KEY, customer_id int NOT NULL, product_id int, quantity smallint NOT NULL,
        total decimal(12,2) NOT NULL, status enum('placed', 'shipped', 'delivered', 'cancelled') NOT NULL,
        placed_at datetime NOT NULL, deliver_on date, model_year year, note text,
        FOREIGN KEY (customer_id) REFERENCES customers (id), FOREIGN KEY (product_id) REFERENCES products (id))""",
    """INSERT INTO customers (name, email, country, vip, signed_up) VALUES
        ('Ada Lovelace', 'ada@example.com', 'GB', true, '2024-01-15 09:30:00'),
        ('Grace Hopper', 'grace@example.com', 'US', false, '2024-03-02 14:00:00'),
        ('Katherine Johnson', 'katherine@example.com', 'US', true, '2025-06-21 08:15:00')""",
    """INSERT INTO products VALUES
        (1, 'c56a4180-65aa-42ec-a945-5fd21dec0538', 'Mechanical keyboard', 129.90, 1.2, 'input,usb',
         '{"layout": "ISO", "switches": "brown"}', x'89504e47'),
        (2, '2f1e8f6a-0c3b-4d7e-9b1a-6f0e2d4c8a11', 'Notebook', 4.50, 0.25, 'paper', '{"pages": 120}', NULL),
        (3, '9b7c2f40-1e2d-4c3b-8a9f-0d1e2f3a4b5c', 'Fountain pen', 89.00, 0.03, '', NULL, NULL)""",
    """INSERT INTO orders (customer_id, product_id, quantity, total, status, placed_at, deliver_on, model_year, note)
        VALUES
        (1, 1, 1, 129.90, 'delivered', '2026-01-05 10:00:00', '2026-01-08', 2025, NULL),
        (2, 2, 10, 45.00, 'shipped', '2026-02-11 16:45:00', '2026-02-14', 2026, 'leave at the door'),
        (3, 3, 1, 89.00, 'placed', '2026-03-01 08:05:00', NULL, NULL, NULL)""",
]


def load_postgres(server: Any) -> None:
    """Create the demo database, its IAM user and the shop tables on a started PostgresServer."""
    server.create_iam_user(IAM_USER)
    server.create_database(DATABASE)
    for statement in POSTGRES_SCHEMA:
        server.execute(statement, database=DATABASE)
    server.grant_all(IAM_USER, DATABASE)
    for grant in ("ALL ON ALL TABLES", "USAGE ON ALL SEQUENCES"):
        server.execute(f"GRANT {grant} IN SCHEMA public TO {server.ident(IAM_USER)}", database=DATABASE)


def load_mysql(server: Any) -> None:
    """Create the demo database, its IAM user and the shop tables on a started MariaDBServer."""
    server.create_iam_user(IAM_USER)
    server.create_database(DATABASE)
    for statement in MYSQL_SCHEMA:
        server.execute(statement, database=DATABASE)
    server.grant_all(IAM_USER, DATABASE)


def definitions(postgres: Any, mariadb: Any | None) -> list[dict[str, Any]]:
    """The demo connection definitions: `demo` (native fields), `demo-hoop` (Hoop style), `demo-mysql`."""
    iam = {"user": f"_aws_iam_rds:{IAM_USER}", "password": "_aws_iam_rds:authtoken"}
    items = [
        {
            "name": "demo", "engine": "postgres", "host": "localhost", "port": postgres.port, "database": DATABASE,
            **iam, "iam_host": RDS_ENDPOINT, "region": "us-east-1", "resource_id": RESOURCE_ID,
            "ca_bundle": postgres.ca_file, "statement_timeout_ms": 15000, "max_rows": 1000,
            "description": "Demo shop on PostgreSQL (localhost, as through a tunnel to an RDS endpoint)",
        },
        {
            "name": "demo-hoop", "engine": "postgres", "HOST": "localhost", "PORT": str(postgres.port),
            "USER": iam["user"], "PASS": iam["password"], "DB": DATABASE, "SSLMODE": "verify-full",
            "ca_bundle": postgres.ca_file, "description": "The same database, defined Hoop style",
        },
    ]
    if mariadb is not None:
        items.append(
            {
                "name": "demo-mysql", "engine": "mysql", "host": "127.0.0.1", "port": mariadb.port,
                "database": DATABASE, **iam, "ca_bundle": mariadb.ca_file, "description": "Demo shop on MariaDB",
            }
        )
    # Reviews (docs/REVIEWS.md): writes on the demo database wait for one approval by another local identity.
    items.append({**items[0], "name": "demo-reviewed", "description": "The demo database; writes need one approval",
                  "approval": {"required_for": ["INSERT", "UPDATE", "DELETE", "DDL"], "min_approvals": 1}})
    for item in items:
        item["allowed_principals"] = list(ALLOWED_PRINCIPALS)
    return items


def runbooks() -> list[dict[str, Any]]:
    """The demo's runbooks: `orders-by-status` on `demo`, whose `status` takes one of the order states."""
    return [
        {
            "name": "orders-by-status",
            "connection": "demo",
            "description": "Orders in one status, newest first, with the customer's name",
            "sql": "SELECT o.id, c.name AS customer, o.quantity, o.total, o.status, o.placed_at FROM orders o "
                   "JOIN customers c ON c.id = o.customer_id WHERE o.status = CAST(:status AS order_status) "
                   "ORDER BY o.placed_at DESC",
            "parameters": [
                {"name": "status", "type": "string", "enum": ["placed", "shipped", "delivered", "cancelled"],
                 "description": "the order status"},
            ],
            "allowed_principals": list(ALLOWED_PRINCIPALS),
            "read_only": True,
            "maxRows": 100,
        }
    ]
