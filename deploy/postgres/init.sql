-- Runs once, on the first start of an empty data volume: one database per
-- service that stores data (analytics keeps its state in NATS).
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE orders;
