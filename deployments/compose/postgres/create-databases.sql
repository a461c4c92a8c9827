-- One database per service, created on the server's first start.
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE notifications;
