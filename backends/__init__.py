"""tritonab.backends"""
