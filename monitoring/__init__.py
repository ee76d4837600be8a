"""tritonab.monitoring"""
