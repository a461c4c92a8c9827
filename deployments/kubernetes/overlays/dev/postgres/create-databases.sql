-- Runs once, on the first start of an empty data directory: a database per service, as each
-- service owns its data and no other reads its tables.
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE notifications;
