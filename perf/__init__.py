"""tritonab.perf"""
