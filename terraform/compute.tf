# compute: the application behind a public Application Load Balancer, on EC2 instances in an
# autoscaling group (type "ec2") or on ECS Fargate (type "ecs"); or a Lambda function from a
# container image in the private subnets (type "lambda": no load balancer, no scaling section,
# invoked through the Lambda API or by event sources). Absent section: nothing.
# Defaults are filled by the manager before Terraform; the coalesce() calls below only keep
# the module usable with hand-written inputs.

locals {
  compute_enabled = var.compute != null
  compute_type    = local.compute_enabled ? coalesce(var.compute.type, "ec2") : null
  compute_ec2     = local.compute_type == "ec2"
  compute_ecs     = local.compute_type == "ecs"
  compute_lambda  = local.compute_type == "lambda"
  # ec2 and ecs run behind the load balancer; lambda has none.
  compute_lb = local.compute_enabled && !local.compute_lambda

  container_port    = local.compute_enabled ? coalesce(var.compute.container_port, 80) : null
  health_check_path = local.compute_enabled ? coalesce(var.compute.health_check_path, "/") : null
  desired_count     = local.compute_enabled ? coalesce(var.compute.desired_count, var.instances.min_instances) : null

  # HTTPS on the load balancer when security names a certificate.
  https_certificate_arn = var.security == null ? null : var.security.ssl_certificate_arn
  compute_https         = local.compute_lb && local.https_certificate_arn != null
  # TLS 1.3 and 1.2 only unless security.ssl_policy names another of AWS's policies.
  https_ssl_policy = var.security == null ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : coalesce(var.security.ssl_policy, "ELBSecurityPolicy-TLS13-1-2-2021-06")

  # A production load balancer refuses deletion unless compute.deletion_protection says otherwise.
  lb_deletion_protection = local.compute_enabled ? coalesce(var.compute.deletion_protection, var.environment == "production") : null

  # Where the application may connect: anywhere inside the VPC, and HTTPS and HTTP anywhere, unless
  # security.unrestricted_egress opens every port.
  unrestricted_egress = var.security == null ? false : coalesce(var.security.unrestricted_egress, false)
  app_egress = local.unrestricted_egress ? [
    { description = "Anywhere", protocol = "-1", from_port = 0, to_port = 0, cidr = "0.0.0.0/0" },
    ] : [
    { description = "Inside the VPC", protocol = "-1", from_port = 0, to_port = 0, cidr = var.vpc_cidr },
    { description = "HTTPS anywhere", protocol = "tcp", from_port = 443, to_port = 443, cidr = "0.0.0.0/0" },
    { description = "HTTP anywhere", protocol = "tcp", from_port = 80, to_port = 80, cidr = "0.0.0.0/0" },
  ]

  # Who may reach the load balancer: security.allowed_cidr_blocks, else anyone.
  ingress_cidrs = coalescelist(var.security == null ? [] : coalesce(var.security.allowed_cidr_blocks, []), ["0.0.0.0/0"])

  # AWS caps load balancer and target group names at 32 characters.
  compute_short_name = trim(substr(local.name, 0, 27), "-")

  # The security group of the instances, tasks or function (database and cache accept traffic from it).
  app_security_group_id = one(aws_security_group.compute_app[*].id)
  container_name        = "app"
}

resource "aws_security_group" "compute_alb" {
  count = local.compute_lb ? 1 : 0

  name        = "${local.name}-alb"
  description = "Load balancer of ${local.name}"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = local.ingress_cidrs
  }

  ingress {
    description = "HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = local.ingress_cidrs
  }

  egress {
    description = "To the application"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }

  tags = {
    Name = "${local.name}-alb"
  }
}

resource "aws_security_group" "compute_app" {
  count = local.compute_enabled ? 1 : 0

  name        = "${local.name}-app"
  description = "Instances or tasks of ${local.name}"
  vpc_id      = aws_vpc.main.id

  # A Lambda function takes no inbound connections: no ingress for it.
  dynamic "ingress" {
    for_each = local.compute_lb ? [1] : []
    content {
      description     = "From the load balancer"
      from_port       = local.container_port
      to_port         = local.container_port
      protocol        = "tcp"
      security_groups = [aws_security_group.compute_alb[0].id]
    }
  }

  dynamic "egress" {
    for_each = local.app_egress
    content {
      description = egress.value.description
      from_port   = egress.value.from_port
      to_port     = egress.value.to_port
      protocol    = egress.value.protocol
      cidr_blocks = [egress.value.cidr]
    }
  }

  tags = {
    Name = "${local.name}-app"
  }
}

resource "aws_lb" "compute" {
  count = local.compute_lb ? 1 : 0

  name               = "${local.compute_short_name}-alb"
  internal           = false
  load_balancer_type = "application"
  security_groups    = [aws_security_group.compute_alb[0].id]
  subnets            = aws_subnet.public[*].id

  enable_deletion_protection = local.lb_deletion_protection
  drop_invalid_header_fields = true

  access_logs {
    bucket  = aws_s3_bucket.logs[0].id
    prefix  = local.logs_elb_prefix
    enabled = true
  }

  # Elastic Load Balancing checks that it may write to the bucket when access logs are switched on.
  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "compute" {
  count = local.compute_lb ? 1 : 0

  # A new target type or port replaces the group, and the listener cannot let go of the old one
  # before a new one exists: create first, under a name that tells the two apart.
  name        = "${trim(substr(local.name, 0, 20), "-")}-${local.compute_ecs ? "ip" : "in"}-${local.container_port}"
  port        = local.container_port
  protocol    = "HTTP"
  vpc_id      = aws_vpc.main.id
  target_type = local.compute_ecs ? "ip" : "instance"

  health_check {
    path                = local.health_check_path
    matcher             = "200-399"
    interval            = 30
    timeout             = 5
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "compute_http" {
  count = local.compute_lb ? 1 : 0

  load_balancer_arn = aws_lb.compute[0].arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.compute_https ? [] : [1]
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.compute[0].arn
    }
  }

  dynamic "default_action" {
    for_each = local.compute_https ? [1] : []
    content {
      type = "redirect"
      redirect {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "compute_https" {
  count = local.compute_https ? 1 : 0

  load_balancer_arn = aws_lb.compute[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = local.https_ssl_policy
  certificate_arn   = local.https_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.compute[0].arn
  }
}

# --- ec2 -------------------------------------------------------------------------------

resource "aws_launch_template" "compute" {
  count = local.compute_ec2 ? 1 : 0

  name                   = "${local.name}-app"
  image_id               = var.compute.ami_id
  instance_type          = coalesce(var.compute.instance_type, var.instances.instance_type)
  key_name               = var.compute.key_name
  user_data              = var.compute.user_data_script == null ? null : base64encode(var.compute.user_data_script)
  vpc_security_group_ids = [aws_security_group.compute_app[0].id]

  monitoring {
    enabled = var.instances.enable_monitoring
  }

  # IMDSv2 only: a token from a PUT, which a request forwarded through the application cannot get
  # (one hop: not from inside a container on the instance either).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name = "${local.name}-app"
  }
}

resource "aws_autoscaling_group" "compute" {
  count = local.compute_ec2 ? 1 : 0

  name                = "${local.name}-app"
  min_size            = var.instances.min_instances
  max_size            = var.instances.max_instances
  desired_capacity    = local.desired_count
  vpc_zone_identifier = aws_subnet.private[*].id
  target_group_arns   = [aws_lb_target_group.compute[0].arn]
  # scaling.scale_in_cooldown when the scaling section is there; AWS's default otherwise.
  default_cooldown = local.scale_in_cooldown

  launch_template {
    id      = aws_launch_template.compute[0].id
    version = aws_launch_template.compute[0].latest_version
  }

  # Autoscaling groups do not take the provider's default tags: the instances get them here.
  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${local.name}-app" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# --- ecs -------------------------------------------------------------------------------

resource "aws_ecs_cluster" "compute" {
  count = local.compute_ecs ? 1 : 0

  name = local.name

  setting {
    name  = "containerInsights"
    value = var.instances.enable_monitoring ? "enabled" : "disabled"
  }
}

resource "aws_iam_role" "compute_task_execution" {
  count = local.compute_ecs ? 1 : 0

  name = "${local.name}-task-execution"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# What AWS's AmazonECSTaskExecutionRolePolicy grants, inline (pull the image, write the logs).
resource "aws_iam_role_policy" "compute_task_execution" {
  count = local.compute_ecs ? 1 : 0

  name = "task-execution"
  role = aws_iam_role.compute_task_execution[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
      ]
      Resource = "*"
    }]
  })
}

resource "aws_ecs_task_definition" "compute" {
  count = local.compute_ecs ? 1 : 0

  family                   = "${local.name}-app"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(coalesce(var.compute.cpu, 256))
  memory                   = tostring(coalesce(var.compute.memory, 512))
  execution_role_arn       = aws_iam_role.compute_task_execution[0].arn

  container_definitions = jsonencode([merge(
    {
      name      = local.container_name
      image     = var.compute.image
      essential = true
      # compute.read_only_root_filesystem (default true): the image cannot be changed at run time.
      readonlyRootFilesystem = coalesce(var.compute.read_only_root_filesystem, true)
      portMappings = [{
        containerPort = local.container_port
        hostPort      = local.container_port
        protocol      = "tcp"
      }]
      healthCheck = {
        command     = ["CMD-SHELL", "curl -fs http://localhost:${local.container_port}${local.health_check_path} || exit 1"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    },
    local.log_group_name == null ? {} : {
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group_name
          awslogs-region        = var.region
          awslogs-stream-prefix = local.container_name
        }
      }
    },
  )])
}

resource "aws_ecs_service" "compute" {
  count = local.compute_ecs ? 1 : 0

  name            = "${local.name}-app"
  cluster         = aws_ecs_cluster.compute[0].id
  task_definition = aws_ecs_task_definition.compute[0].arn
  desired_count   = local.desired_count
  launch_type     = "FARGATE"
  # Fargate's newest platform (security patches land there first).
  platform_version = "LATEST"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.compute_app[0].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.compute[0].arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  # A target group can only be used by a service once a listener puts it behind the ALB.
  depends_on = [aws_lb_listener.compute_http, aws_lb_listener.compute_https]
}

# --- lambda ----------------------------------------------------------------------------

locals {
  lambda_function_name = "${local.name}-app"
  # The log group Lambda writes the function's logs to; monitoring sets its retention.
  lambda_log_group_name = "/aws/lambda/${local.lambda_function_name}"
}

resource "aws_iam_role" "compute_lambda" {
  count = local.compute_lambda ? 1 : 0

  name = "${local.name}-lambda"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# What AWS's AWSLambdaVPCAccessExecutionRole grants (AWSLambdaBasicExecutionRole's logs, plus the
# network interfaces of a function in a VPC), inline: AWS managed policies are not on every AWS
# stand-in.
resource "aws_iam_role_policy" "compute_lambda" {
  count = local.compute_lambda ? 1 : 0

  name = "lambda-execution"
  role = aws_iam_role.compute_lambda[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      Resource = "*"
    }]
  })
}

# Made here, before the function, so that Lambda does not make it on its own (kept for ever).
resource "aws_cloudwatch_log_group" "compute_lambda" {
  count = local.compute_lambda ? 1 : 0

  name              = local.lambda_log_group_name
  retention_in_days = local.monitoring_enabled ? coalesce(var.monitoring.log_retention_days, 30) : null
  kms_key_id        = local.kms_key_arn
}

resource "aws_lambda_function" "compute" {
  count = local.compute_lambda ? 1 : 0

  function_name = local.lambda_function_name
  role          = aws_iam_role.compute_lambda[0].arn
  package_type  = "Image"
  image_uri     = var.compute.image
  memory_size   = coalesce(var.compute.memory, 512)
  timeout       = coalesce(var.compute.timeout, 30)

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.compute_app[0].id]
  }

  depends_on = [aws_iam_role_policy.compute_lambda, aws_cloudwatch_log_group.compute_lambda]
}
