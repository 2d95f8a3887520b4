"""Reference series: a known series drawn beside a monitor's estimates (the truth a demo knows,
an external benchmark). One value in [0, 1] per (monitor, label, partition date)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class MonitorReference(models.Model):
    monitor = models.ForeignKey("monitoring.Monitor", on_delete=models.CASCADE, related_name="references")
    label = models.CharField(max_length=63)
    partition_date = models.DateField()
    value = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    source = models.CharField(max_length=200, help_text="Where the series comes from (shown in the legend).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "monitoring"
        ordering = ["monitor", "label", "partition_date"]
        constraints = [
            models.UniqueConstraint(fields=["monitor", "label", "partition_date"], name="reference_once_per_day"),
            models.CheckConstraint(condition=models.Q(value__gte=0.0, value__lte=1.0), name="reference_value_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id} {self.label} {self.partition_date:%Y-%m-%d}"
