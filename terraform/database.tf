# database: an RDS instance (postgres, mysql, mariadb) or an Aurora cluster with one instance
# (aurora-postgresql, aurora-mysql) in the private subnets. The master password is made inside
# Terraform and kept in Secrets Manager; no output ever shows it. IAM authentication is on beside
# the password, the engine's logs go to CloudWatch Logs, PostgreSQL logs schema changes and slow
# statements, and with the environment's enable_monitoring the instances report enhanced
# monitoring. Absent: nothing.

locals {
  database_enabled = var.database != null
  database_engine  = local.database_enabled ? coalesce(var.database.engine, "postgres") : null
  database_aurora  = local.database_enabled && startswith(coalesce(local.database_engine, "-"), "aurora-")
  database_rds     = local.database_enabled && !local.database_aurora
  database_port    = local.database_enabled ? (contains(["postgres", "aurora-postgresql"], local.database_engine) ? 5432 : 3306) : null

  database_retention           = local.database_enabled ? coalesce(var.database.backup_retention_days, var.instances.backup_retention_days) : null
  database_deletion_protection = local.database_enabled ? coalesce(var.database.deletion_protection, true) : null
  database_username            = "dbadmin"
  database_identifier          = "${lower(local.name)}-db"

  # The generated password: the UUID of a terraform_data resource (no random provider offline),
  # 36 characters of hex digits and hyphens, which every engine accepts.
  database_password = one(terraform_data.database_password[*].id)

  # The logs each engine exports to CloudWatch Logs.
  database_log_exports = !local.database_enabled ? [] : lookup({
    postgres          = ["postgresql", "upgrade"]
    aurora-postgresql = ["postgresql"]
    mysql             = ["audit", "error", "general", "slowquery"]
    mariadb           = ["audit", "error", "general", "slowquery"]
    aurora-mysql      = ["audit", "error", "general", "slowquery"]
  }, local.database_engine, [])

  # PostgreSQL's query logging and TLS-only connections need a parameter group of the engine's major
  # version's family; with no engine_version AWS picks the version, and the default group stays.
  database_postgres_major = local.database_enabled && var.database.engine_version != null ? split(".", var.database.engine_version)[0] : null
  database_query_logging  = local.database_postgres_major != null && contains(["postgres", "aurora-postgresql"], coalesce(local.database_engine, "-"))
  database_query_logging_parameters = {
    log_statement              = "ddl"
    log_min_duration_statement = "1000"
    # Clients connect with TLS only (RDS's default from PostgreSQL 15 on).
    "rds.force_ssl" = "1"
  }

  database_monitoring_interval = local.database_enabled && var.instances.enable_monitoring ? 60 : 0
}

resource "terraform_data" "database_password" {
  count = local.database_enabled ? 1 : 0
}

resource "aws_db_subnet_group" "database" {
  count = local.database_enabled ? 1 : 0

  name       = "${lower(local.name)}-db"
  subnet_ids = aws_subnet.private[*].id

  tags = {
    Name = "${local.name}-db"
  }
}

resource "aws_security_group" "database" {
  count = local.database_enabled ? 1 : 0

  name        = "${local.name}-db"
  description = "Database of ${local.name}"
  vpc_id      = aws_vpc.main.id

  # From the application when there is a compute section, else from inside the VPC.
  ingress {
    description     = "Database clients"
    from_port       = local.database_port
    to_port         = local.database_port
    protocol        = "tcp"
    security_groups = local.compute_enabled ? [local.app_security_group_id] : null
    cidr_blocks     = local.compute_enabled ? null : [var.vpc_cidr]
  }

  tags = {
    Name = "${local.name}-db"
  }
}

resource "aws_db_parameter_group" "database" {
  count = local.database_rds && local.database_query_logging ? 1 : 0

  name_prefix = "${lower(local.name)}-db-"
  family      = "postgres${coalesce(local.database_postgres_major, "-")}"
  description = "Query logging of the ${local.name} database"

  dynamic "parameter" {
    for_each = local.database_query_logging_parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_rds_cluster_parameter_group" "database" {
  count = local.database_aurora && local.database_query_logging ? 1 : 0

  name_prefix = "${lower(local.name)}-db-"
  family      = "aurora-postgresql${coalesce(local.database_postgres_major, "-")}"
  description = "Query logging of the ${local.name} database"

  dynamic "parameter" {
    for_each = local.database_query_logging_parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# What AWS's AmazonRDSEnhancedMonitoringRole grants, inline (AWS managed policies are not on every
# AWS stand-in): the RDSOSMetrics log group only.
resource "aws_iam_role" "database_monitoring" {
  count = local.database_monitoring_interval > 0 ? 1 : 0

  name = "${local.name}-db-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "database_monitoring" {
  count = local.database_monitoring_interval > 0 ? 1 : 0

  name = "enhanced-monitoring"
  role = aws_iam_role.database_monitoring[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "LogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:PutRetentionPolicy"]
        Resource = "arn:${data.aws_partition.current.partition}:logs:*:*:log-group:RDS*"
      },
      {
        Sid      = "LogStreams"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"]
        Resource = "arn:${data.aws_partition.current.partition}:logs:*:*:log-group:RDS*:log-stream:*"
      },
    ]
  })
}

resource "aws_db_instance" "database" {
  count = local.database_rds ? 1 : 0

  identifier                = local.database_identifier
  engine                    = local.database_engine
  engine_version            = var.database.engine_version
  instance_class            = coalesce(var.database.instance_class, "db.t3.micro")
  allocated_storage         = coalesce(var.database.allocated_storage, 20)
  storage_encrypted         = true
  kms_key_id                = local.kms_key_arn
  multi_az                  = coalesce(var.database.multi_az, false)
  username                  = local.database_username
  password                  = local.database_password
  db_subnet_group_name      = aws_db_subnet_group.database[0].name
  vpc_security_group_ids    = [aws_security_group.database[0].id]
  backup_retention_period   = local.database_retention
  deletion_protection       = local.database_deletion_protection
  skip_final_snapshot       = !local.database_deletion_protection
  final_snapshot_identifier = local.database_deletion_protection ? "${local.database_identifier}-final" : null
  publicly_accessible       = false
  copy_tags_to_snapshot     = true

  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = local.database_log_exports
  parameter_group_name                = one(aws_db_parameter_group.database[*].name)
  # The RSA 2048 CA valid until 2061 (the 2019 CA expired in 2024).
  ca_cert_identifier  = "rds-ca-rsa2048-g1"
  monitoring_interval = local.database_monitoring_interval
  monitoring_role_arn = one(aws_iam_role.database_monitoring[*].arn)

  tags = local.backup_selection_tags

  depends_on = [aws_iam_role_policy.database_monitoring]
}

resource "aws_rds_cluster" "database" {
  count = local.database_aurora ? 1 : 0

  cluster_identifier        = local.database_identifier
  engine                    = local.database_engine
  engine_version            = var.database.engine_version
  master_username           = local.database_username
  master_password           = local.database_password
  db_subnet_group_name      = aws_db_subnet_group.database[0].name
  vpc_security_group_ids    = [aws_security_group.database[0].id]
  storage_encrypted         = true
  kms_key_id                = local.kms_key_arn
  backup_retention_period   = local.database_retention
  deletion_protection       = local.database_deletion_protection
  skip_final_snapshot       = !local.database_deletion_protection
  final_snapshot_identifier = local.database_deletion_protection ? "${local.database_identifier}-final" : null
  copy_tags_to_snapshot     = true

  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = local.database_log_exports
  db_cluster_parameter_group_name     = one(aws_rds_cluster_parameter_group.database[*].name)

  tags = local.backup_selection_tags
}

resource "aws_rds_cluster_instance" "database" {
  count = local.database_aurora ? 1 : 0

  identifier           = "${local.database_identifier}-1"
  cluster_identifier   = aws_rds_cluster.database[0].id
  engine               = local.database_engine
  engine_version       = var.database.engine_version
  instance_class       = coalesce(var.database.instance_class, "db.t3.micro")
  db_subnet_group_name = aws_db_subnet_group.database[0].name
  publicly_accessible  = false
  monitoring_interval  = local.database_monitoring_interval
  monitoring_role_arn  = one(aws_iam_role.database_monitoring[*].arn)

  depends_on = [aws_iam_role_policy.database_monitoring]
}

locals {
  database_address = local.database_rds ? one(aws_db_instance.database[*].address) : one(aws_rds_cluster.database[*].endpoint)
}

resource "aws_secretsmanager_secret" "database" {
  count = local.database_enabled ? 1 : 0

  name_prefix = "${local.name}-db-"
  description = "Master credentials of the ${local.name} database"
  kms_key_id  = local.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "database" {
  count = local.database_enabled ? 1 : 0

  secret_id = aws_secretsmanager_secret.database[0].id
  secret_string = jsonencode({
    engine   = local.database_engine
    host     = local.database_address
    port     = local.database_port
    username = local.database_username
    password = local.database_password
  })
}
